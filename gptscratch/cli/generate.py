"""`gptscratch generate`: stream text from a checkpoint to stdout."""

from __future__ import annotations

import sys
import time
from typing import Annotated, Optional

import typer

from gptscratch.cli.render import log, print_json
from gptscratch.cli.settings import announce_device
from gptscratch.errors import UsageError

Opt = typer.Option


def _read_prompt(prompt: str | None) -> str:
    if prompt is not None:
        return prompt
    if not sys.stdin.isatty():
        return sys.stdin.read()
    return ""  # on a terminal with no prompt: start from end-of-text (unconditional sample)


def generate(
    checkpoint: Annotated[Optional[str], Opt("--checkpoint", "-c", help="Run folder, checkpoint folder or run name (default: the most recent run).")] = None,
    prompt: Annotated[Optional[str], Opt("--prompt", "-p", help="Text to continue (default: stdin when piped).")] = None,
    max_tokens: Annotated[int, Opt(help="Tokens to generate.")] = 200,
    preset: Annotated[str, Opt(help="Sampling preset: creative, balanced or precise.")] = "balanced",
    temperature: Annotated[Optional[float], Opt(help="Softmax temperature; 0 = greedy.")] = None,
    top_k: Annotated[Optional[int], Opt(help="Sample among the k most likely tokens.")] = None,
    top_p: Annotated[Optional[float], Opt(help="Sample among the most likely tokens covering probability p.")] = None,
    seed: Annotated[Optional[int], Opt(help="Random seed: the same seed gives the same text.")] = None,
    no_cache: Annotated[bool, Opt("--no-cache", help="Recompute the whole context every token (slow; for comparison).")] = False,
    json_output: Annotated[bool, Opt("--json", help="Print one JSON object (prompt, completion, counts) instead of streaming.")] = False,
) -> None:
    """Generate text from a trained model. Example: gptscratch generate --prompt "The " --preset creative"""
    from gptscratch.generation import PRESETS, SamplingConfig, TextStream, generate_ids

    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if max_tokens < 0:
        raise UsageError(f"--max-tokens must be ≥ 0 (got {max_tokens})")
    chosen = {**PRESETS[preset], **{k: v for k, v in dict(temperature=temperature, top_k=top_k,
                                                         top_p=top_p).items() if v is not None}}
    try:
        sampling = SamplingConfig(**chosen)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    text = _read_prompt(prompt)

    from gptscratch.checkpoint import load_checkpoint

    device = announce_device()
    loaded = load_checkpoint(checkpoint, device=device)
    tokenizer = loaded.tokenizer
    log(f"checkpoint: {loaded.path}")
    prompt_ids = tokenizer.encode(text) if text else []
    prompt_ids = prompt_ids or [tokenizer.eot_id]

    stream = TextStream(tokenizer)
    pieces: list[str] = []
    started = time.perf_counter()
    count = 0
    for token in generate_ids(loaded.model, prompt_ids, max_tokens, sampling, seed=seed,
                              stop_ids=(tokenizer.eot_id,), vocab_limit=tokenizer.vocab_size,
                              use_cache=not no_cache):
        count += 1
        piece = stream.push(token)
        if json_output:
            pieces.append(piece)
        elif piece:
            sys.stdout.write(piece)
            sys.stdout.flush()
    tail = stream.flush()
    elapsed = time.perf_counter() - started
    finish = "length" if count == max_tokens else "end_of_text"
    if json_output:
        print_json({"prompt": text, "completion": "".join(pieces) + tail, "prompt_tokens": len(prompt_ids),
                    "completion_tokens": count, "finish_reason": finish,
                    "tokens_per_second": round(count / elapsed, 2) if elapsed > 0 else None})
    else:
        sys.stdout.write(tail + "\n")
        sys.stdout.flush()
        log(f"{count} tokens in {elapsed:.2f}s ({count / max(elapsed, 1e-9):.1f} tokens/s)")
