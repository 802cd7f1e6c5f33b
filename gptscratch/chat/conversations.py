"""Conversations as data: reading and checking them.

A conversation is the common `{"messages": [{"role": "system|user|assistant", "content": "..."}, ...]}` shape
(OpenAI's API, Hugging Face's chat datasets such as smol-smoltalk or ultrachat). Sources:

    builtin-chat            questions about lists of digits, generated offline (gptscratch/chat/builtin.py)
    FILE.jsonl              one conversation per line
    FILE.parquet            a `messages` column
    hf:ORG/NAME[:CONFIG]    a Hub dataset with a `messages` column, streamed (split: train)

Every conversation is checked before anything trains: roles from the three above, a system message only first,
string contents, at least one assistant reply. A bad one stops the run with the row named
(`chats.jsonl:17: message 2 has role 'bot'; ...`) — a silently skipped row is a silently different dataset.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from gptscratch.errors import UsageError

ROLES = ("system", "user", "assistant")
BUILTIN = "builtin-chat"


def check_messages(value, where: str, need_reply: bool = True) -> list[dict]:
    """The messages of one conversation (a {"messages": [...]} object or the list itself), or UsageError."""
    messages = value.get("messages") if isinstance(value, dict) else value
    if not isinstance(messages, list) or not messages:
        raise UsageError(f"{where}: expected {{\"messages\": [{{\"role\": ..., \"content\": ...}}, ...]}} with at "
                         "least one message; fix or remove the row")
    checked = []
    for number, message in enumerate(messages, start=1):
        if not isinstance(message, dict) or "role" not in message or "content" not in message:
            raise UsageError(f"{where}: message {number} must be an object with \"role\" and \"content\"")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise UsageError(f"{where}: message {number} has role {role!r}; roles are {', '.join(ROLES)}")
        if role == "system" and number != 1:
            raise UsageError(f"{where}: message {number} is a system message; only the first message may be one")
        if not isinstance(content, str):
            raise UsageError(f"{where}: message {number}'s content is {type(content).__name__}, not text")
        checked.append({"role": role, "content": content})
    if need_reply and not any(m["role"] == "assistant" for m in checked):
        raise UsageError(f"{where}: the conversation has no assistant message, so nothing to learn from; fix or "
                         "remove the row")
    return checked


def read_conversations(source: str, split: str = "train") -> Iterator[tuple[str, list[dict]]]:
    """(where, messages) for every conversation of `source` (module docstring), checked."""
    text = source.strip()
    if text == BUILTIN or text.startswith(BUILTIN + ":"):
        from .builtin import builtin_conversations

        for index, messages in enumerate(builtin_conversations(split, text[len(BUILTIN) + 1:])):
            yield f"{BUILTIN}:{index}", messages
        return
    if text.startswith("hf:"):
        yield from _hub_rows(text, split)
        return
    path = Path(text).expanduser()
    if not path.is_file():
        raise UsageError(f"conversation source {source!r} is not a file; give a .jsonl or .parquet file, "
                         f"hf:ORG/NAME or {BUILTIN}")
    if path.suffix.lower() == ".jsonl":
        yield from _jsonl_rows(path)
    elif path.suffix.lower() == ".parquet":
        yield from _parquet_rows(path)
    else:
        raise UsageError(f"{path}: conversations must be .jsonl (one {{\"messages\": [...]}} per line) or .parquet "
                         "(a messages column)")


def _jsonl_rows(path: Path) -> Iterator[tuple[str, list[dict]]]:
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {path} ({exc.strerror or exc})") from None
    with handle:
        try:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    value = json.loads(line)
                except ValueError as exc:
                    raise UsageError(f"{where}: not valid JSON ({exc.msg}); one conversation per line") from None
                yield where, check_messages(value, where)
        except UnicodeDecodeError:
            raise UsageError(f"{path} is not UTF-8 text; conversations must be UTF-8 JSON lines") from None


def _parquet_rows(path: Path) -> Iterator[tuple[str, list[dict]]]:
    try:
        import pyarrow.parquet as pq

        table = pq.ParquetFile(str(path))
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a bad file
        raise UsageError(f"cannot read {path} as parquet ({' '.join(str(exc).split())[:200]})") from None
    if "messages" not in table.schema_arrow.names:
        raise UsageError(f"{path} has no 'messages' column (columns: {', '.join(table.schema_arrow.names)})")
    row = 0
    for batch in table.iter_batches(columns=["messages"]):
        for value in batch.column(0).to_pylist():
            row += 1
            yield f"{path}:row {row}", check_messages(value, f"{path}: row {row}")


def _hub_rows(source: str, split: str) -> Iterator[tuple[str, list[dict]]]:
    from gptscratch.data.sources.hub import HubSource, check_hub_reachable
    from gptscratch.data.sources.table_rows import load_streaming

    hub = HubSource(source, text_field="messages", split=split)
    location = hub.location()
    if location == hub.repo:
        check_hub_reachable()
    try:
        rows = load_streaming(location, name=hub.config, split=split)
    except Exception as exc:  # noqa: BLE001 - the Hub client's many error types; HubSource words them
        raise UsageError(f"cannot open {source} ({type(exc).__name__}: {' '.join(str(exc).split())[:200]})") from None
    for index, row in enumerate(rows):
        where = f"{source}: row {index + 1}"
        if "messages" not in row:
            raise UsageError(f"{source} has no 'messages' column (columns: {', '.join(row)})")
        yield where, check_messages(row["messages"], where)
