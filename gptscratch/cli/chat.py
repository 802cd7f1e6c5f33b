"""`gptscratch chat`: talk to a fine-tuned model (library: gptscratch.generation.chat).

On a terminal: a conversation, replies streamed as they are written, the KV cache kept across turns. Commands:
/reset (start over), /save FILE (the conversation as {"messages": [...]} JSON), /exit (or Ctrl-D). Ctrl-C stops
the reply being written and returns to the prompt.

Without a terminal it is a pipeline and never waits for a person: one conversation per stdin line
({"messages": [...]} ending with the user's message), one JSON reply per line on stdout, in input order, decoded
--batch-size at a time. Messages dropped to fit the context are reported on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from gptscratch.cli.render import announce_device, log, print_json, warn
from gptscratch.errors import UsageError

Opt = typer.Option


def chat(
    checkpoint: Annotated[Optional[str], typer.Argument(help="Run folder, checkpoint folder, run or pretrained name (default: the most recent run).")] = None,
    system: Annotated[Optional[str], Opt(help="System prompt: the first message of every conversation.")] = None,
    preset: Annotated[str, Opt(help="Sampling preset: creative, balanced or precise.")] = "balanced",
    temperature: Annotated[Optional[float], Opt(help="Softmax temperature; 0 = greedy.")] = None,
    top_k: Annotated[Optional[int], Opt(help="Sample among the k most likely tokens.")] = None,
    top_p: Annotated[Optional[float], Opt(help="Sample among the most likely tokens covering probability p.")] = None,
    max_tokens: Annotated[int, Opt(help="Longest reply, in tokens.")] = 256,
    seed: Annotated[Optional[int], Opt(help="Random seed: the same seed gives the same replies.")] = None,
    batch_size: Annotated[int, Opt(help="Pipeline: conversations decoded together.")] = 16,
    chat_template: Annotated[str, Opt(help="auto (the model's own), gptscratch, or a Jinja file.")] = "auto",
    dtype: Annotated[str, Opt(help="Inference precision: auto, bf16 or fp32.")] = "auto",
) -> None:
    """Chat with a fine-tuned model (`gptscratch train sft`); JSONL in/out when stdin is not a terminal."""
    from gptscratch.generation import SamplingConfig
    from gptscratch.generation.precision import INFERENCE_DTYPES
    from gptscratch.generation.presets import preset_sampling

    if max_tokens < 1 or batch_size < 1:
        raise UsageError("--max-tokens and --batch-size must be ≥ 1")
    if dtype not in INFERENCE_DTYPES:
        raise UsageError(f"unknown --dtype {dtype!r}; choose one of {', '.join(INFERENCE_DTYPES)}")
    try:
        sampling = SamplingConfig(**preset_sampling(preset, temperature=temperature, top_k=top_k, top_p=top_p))
    except ValueError as exc:
        raise UsageError(f"invalid sampling setting: {exc}") from None
    model, tokenizer, fmt = _load(checkpoint, chat_template, dtype)
    if sys.stdin.isatty():
        _terminal(model, tokenizer, fmt, system, sampling, max_tokens, seed)
    else:
        _pipeline(model, tokenizer, fmt, system, sampling, max_tokens, seed, batch_size)


def _load(checkpoint, chat_template: str, dtype: str):
    from gptscratch.chat.tokens import chat_ready
    from gptscratch.generation.precision import load_for_inference

    loaded, chosen = load_for_inference(checkpoint, announce_device(), dtype)
    model, tokenizer, fmt = chat_ready(loaded, chat_template)
    log(f"checkpoint: {loaded.path} ({chosen}, template {fmt.name})")
    if tokenizer is not loaded.tokenizer:
        warn("this model was never fine-tuned to chat (it has no chat tokens): expect noise; fine-tune it with "
             "`gptscratch train sft --init-from ...`")
    return model, tokenizer, fmt


def _terminal(model, tokenizer, fmt, system, sampling, max_tokens, seed) -> None:
    from gptscratch.generation.chat import ChatSession

    session = ChatSession(model, tokenizer, fmt, system=system, sampling=sampling, max_new_tokens=max_tokens,
                          seed=seed)
    log("type a message; /reset starts over, /save FILE saves the conversation, /exit or Ctrl-D leaves; "
        "Ctrl-C stops a reply")
    while True:
        try:
            text = input("you> ")
        except EOFError:
            sys.stdout.write("\n")
            return
        except KeyboardInterrupt:
            sys.stdout.write("\n")
            log("(Ctrl-D or /exit leaves)")
            continue
        command = text.strip()
        if not command:
            continue
        if command in ("/exit", "/quit"):
            return
        if command == "/reset":
            session.reset()
            log("conversation reset")
            continue
        if command.startswith("/save"):
            _save(session.conversation(), command[len("/save"):].strip())
            continue
        _stream(session, text)


def _stream(session, text: str) -> None:
    sys.stdout.write("model> ")
    reply = session.reply(text)
    try:
        for piece in reply:
            sys.stdout.write(piece)
            sys.stdout.flush()
    except KeyboardInterrupt:
        reply.close()  # records the partial reply (ChatSession.reply's finally)
        sys.stdout.write("\n")
        log("(reply stopped)")
        return
    sys.stdout.write("\n")
    if session.notice:
        warn(session.notice)
    if session.finish_reason != "stop":
        log(f"(reply cut: {'--max-tokens reached' if session.finish_reason == 'length' else 'context full'})")


def _save(messages: list[dict], target: str) -> None:
    from gptscratch.atomic import atomic_path

    if not target:
        warn("give a file: /save chat.json")
        return
    path = Path(target).expanduser()
    try:
        with atomic_path(path) as tmp:
            Path(tmp).write_text(json.dumps({"messages": messages}, ensure_ascii=False, indent=2) + "\n",
                                 encoding="utf-8")
    except OSError as exc:
        warn(f"could not save {path} ({exc.strerror or exc})")
        return
    log(f"saved {len(messages)} messages to {path}")


def _conversation(raw: str, where: str, check_messages) -> list[dict]:
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise UsageError(f"{where}: not valid JSON ({exc.msg}); send one {{\"messages\": [...]}} per line") from None
    messages = check_messages(value, where, need_reply=False)
    if messages[-1]["role"] != "user":
        raise UsageError(f"{where}: the last message must be the user's (the one to reply to)")
    return messages


def _pipeline(model, tokenizer, fmt, system, sampling, max_tokens, seed, batch_size) -> None:
    from gptscratch.chat import check_messages
    from gptscratch.generation.chat import reply_batch

    pending: list[tuple[int, list[dict]]] = []

    def flush() -> None:
        results = reply_batch(model, tokenizer, fmt, [m for _, m in pending], sampling, max_tokens, seed)
        for (line, _), result in zip(pending, results):
            if result["dropped"]:
                warn(f"line {line}: dropped the {result['dropped']} oldest message(s) to fit the context")
            print_json({"line": line, **{k: v for k, v in result.items() if k != "dropped"},
                        "dropped_messages": result["dropped"]})
        sys.stdout.flush()
        pending.clear()

    for number, raw in enumerate(sys.stdin, start=1):
        if not raw.strip():
            continue
        try:
            messages = _conversation(raw, f"stdin line {number}", check_messages)
        except UsageError:
            if pending:  # the lines before the bad one still get their replies
                flush()
            raise
        if system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system}, *messages]
        pending.append((number, messages))
        if len(pending) == batch_size:
            flush()
    if pending:
        flush()
