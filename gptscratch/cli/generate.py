"""`gptscratch generate`: text from a checkpoint, streamed to stdout or as JSON lines, or a strategy comparison.

Prompts come from --prompt, --prompt-file or piped stdin (the whole text, or one prompt per line with
--each-line; a single trailing newline is dropped, blank lines are skipped). With no prompt at all (a terminal,
or an empty pipe) generation starts from end-of-text. Data goes to stdout, everything else to stderr; a reader
that closes the pipe early (`| head`) ends generation quietly with exit status 0.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from gptscratch.cli.render import announce_device, log, print_json, show, table
from gptscratch.errors import UsageError
from gptscratch.textfile import read_stdin_text, read_text_file

Opt = typer.Option


def read_prompts(prompt: str | None, prompt_file: Path | None, each_line: bool) -> list[str]:
    """The prompts to run, from the flag, the file or stdin (see module docstring)."""
    if prompt is not None and prompt_file is not None:
        raise UsageError("give either --prompt or --prompt-file, not both")
    if prompt is not None:
        if not prompt:
            raise UsageError("--prompt is empty; give some text, or omit --prompt to sample from end-of-text")
        text, source = prompt, "--prompt"
    elif prompt_file is not None:
        text, source = read_text_file(prompt_file, "prompt file"), str(prompt_file)
        if not text.strip():
            raise UsageError(f"prompt file {prompt_file} is empty; put the prompt text in it")
    elif not sys.stdin.isatty():
        text, source = read_stdin_text(), "stdin"
    else:
        text, source = "", "terminal"
    if each_line:
        lines = text.splitlines()
        prompts = [line for line in lines if line.strip()]
        if len(prompts) < len(lines):
            log(f"skipped {len(lines) - len(prompts)} blank line(s) of {source}")
        if not prompts:
            raise UsageError(f"--each-line found no non-blank line in {source}; give one prompt per line")
        return prompts
    if text.endswith("\n") and prompt is None:
        text = text[:-2] if text.endswith("\r\n") else text[:-1]
    return [text]


def _unescape(stops) -> tuple[str, ...]:
    """--stop '\\n\\n' typed in a shell arrives as backslash-n: read \\n and \\t as newline and tab."""
    return tuple(s.replace("\\n", "\n").replace("\\t", "\t") for s in stops)


def _quiet_broken_pipe() -> None:
    """The reader went away (`| head`): point stdout at /dev/null so Python's exit flush cannot fail."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def generate(
    checkpoint: Annotated[Optional[str], Opt("--checkpoint", "-c", help="Run folder, checkpoint folder or run name (default: the most recent run).")] = None,
    prompt: Annotated[Optional[str], Opt("--prompt", "-p", help="Text to continue (default: stdin when piped).")] = None,
    prompt_file: Annotated[Optional[Path], Opt("--prompt-file", "-f", help="Read the prompt from a UTF-8 text file.")] = None,
    each_line: Annotated[bool, Opt("--each-line", help="One prompt per line of the file or stdin (blank lines skipped).")] = False,
    max_tokens: Annotated[int, Opt(help="Most tokens to generate per output.")] = 200,
    preset: Annotated[str, Opt(help="Sampling preset: creative, balanced or precise.")] = "balanced",
    temperature: Annotated[Optional[float], Opt(help="Softmax temperature; 0 = greedy.")] = None,
    top_k: Annotated[Optional[int], Opt(help="Sample among the k most likely tokens.")] = None,
    top_p: Annotated[Optional[float], Opt(help="Sample among the most likely tokens covering probability p, in (0, 1].")] = None,
    repetition_penalty: Annotated[Optional[float], Opt(help="Penalise tokens already in the text (>1 penalises, 1 = off).")] = None,
    stop: Annotated[Optional[list[str]], Opt("--stop", help="Stop before this string (repeatable; \\n and \\t allowed); it is not printed.")] = None,
    ignore_eot: Annotated[bool, Opt("--ignore-eot", help="Keep going past the end-of-text token.")] = False,
    seed: Annotated[Optional[int], Opt(help="Random seed: the same seed gives the same text (sample k uses seed + k).")] = None,
    num_samples: Annotated[int, Opt("--num-samples", "-k", help="Samples per prompt; the prompt is prefilled once.")] = 1,
    batch_size: Annotated[int, Opt(help="Prompts decoded together with --each-line.")] = 8,
    dtype: Annotated[str, Opt(help="Inference precision: auto (bf16 where the hardware has it), bf16 or fp32.")] = "auto",
    no_cache: Annotated[bool, Opt("--no-cache", help="Recompute the whole context every token (slow; for comparison).")] = False,
    compare: Annotated[bool, Opt("--compare", help="Run the prompt under each sampling strategy and show a table.")] = False,
    json_output: Annotated[bool, Opt("--json", help="One JSON object per output (JSON lines) instead of plain text.")] = False,
) -> None:
    """Generate text from a trained model. Example: gptscratch generate --prompt "The " --preset creative"""
    from gptscratch.generation import SamplingConfig
    from gptscratch.generation.completion import GenerationSettings
    from gptscratch.generation.precision import INFERENCE_DTYPES
    from gptscratch.generation.presets import preset_sampling

    chosen = preset_sampling(preset, temperature=temperature, top_k=top_k, top_p=top_p,
                             repetition_penalty=repetition_penalty)
    if dtype not in INFERENCE_DTYPES:
        raise UsageError(f"unknown --dtype {dtype!r}; choose one of {', '.join(INFERENCE_DTYPES)}")
    try:
        settings = GenerationSettings(max_new_tokens=max_tokens, sampling=SamplingConfig(**chosen),
                                      num_samples=num_samples, seed=seed, stop_strings=_unescape(stop or ()),
                                      stop_at_end_of_text=not ignore_eot, use_cache=not no_cache,
                                      batch_size=batch_size)
    except ValueError as exc:
        raise UsageError(f"invalid generation setting: {exc}") from None
    prompts = read_prompts(prompt, prompt_file, each_line)
    if compare and len(prompts) > 1:
        raise UsageError("--compare takes a single prompt; drop --each-line")
    if not prompts[0] and not each_line:
        log("no prompt: sampling from end-of-text")

    model, tokenizer = _load(checkpoint, dtype)
    try:
        if compare:
            _compare(model, tokenizer, prompts[0], settings, json_output)
        else:
            _generate(model, tokenizer, prompts, settings, json_output)
    except BrokenPipeError:
        _quiet_broken_pipe()


def _load(checkpoint: str | None, dtype: str):
    from gptscratch.generation.precision import load_for_inference

    loaded, chosen = load_for_inference(checkpoint, announce_device(), dtype)
    log(f"checkpoint: {loaded.path}")
    log(f"dtype: {chosen}")
    return loaded.model, loaded.tokenizer


def _generate(model, tokenizer, prompts: list[str], settings, json_output: bool) -> None:
    from gptscratch.generation.completion import Completion, stream_completions

    live = len(prompts) == 1 and settings.num_samples == 1 and not json_output   # stream one output as it grows
    finished: dict[int, Completion] = {}
    next_index, tokens = 0, 0
    started = time.perf_counter()
    for event in stream_completions(model, tokenizer, prompts, settings):
        if not isinstance(event, Completion):
            if live:
                sys.stdout.write(event.text)
                sys.stdout.flush()
            continue
        tokens += event.completion_tokens
        finished[event.index] = event
        while next_index in finished:    # print in input order although rows of a batch end in any order
            done = finished.pop(next_index)
            if json_output:
                print_json(done.to_dict())
            elif live:
                sys.stdout.write("\n")
            else:
                sys.stdout.write(("\n" if next_index else "") + done.completion + "\n")
            sys.stdout.flush()
            next_index += 1
    elapsed = time.perf_counter() - started
    log(f"{tokens} tokens in {elapsed:.2f}s ({tokens / max(elapsed, 1e-9):.1f} tokens/s)")


def _compare(model, tokenizer, prompt: str, settings, json_output: bool) -> None:
    from gptscratch.generation.completion import compare_strategies

    rows = []
    for name, values, completion in compare_strategies(model, tokenizer, prompt, settings):
        knobs = " ".join(f"{SHORT[k]}={v}" for k, v in values.items() if v is not None)
        if json_output:
            print_json({"strategy": name, "settings": values, **completion.to_dict()})
        rows.append((name, knobs, completion.completion, completion.completion_tokens, completion.finish_reason))
    if not json_output:
        result = table(f"prompt: {prompt!r}", ["strategy", "settings", "completion", "tokens", "finish"], rows)
        result.columns[0].no_wrap = True    # the strategy names must stay readable; the completion folds
        show(result)


SHORT = {"temperature": "τ", "top_k": "k", "top_p": "p", "repetition_penalty": "rep"}
