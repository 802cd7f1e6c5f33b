"""Reading text the user gave (a prompt file, a file to score, piped stdin): UTF-8, not binary, not empty.

Each failure is a UsageError (exit 2) whose one line names the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError


def read_text_file(path, what: str = "file") -> str:
    """The file's text; `what` names it in messages (e.g. "prompt file")."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{what} {path} is a folder; give the path of a UTF-8 text file")
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist; give the path of a UTF-8 text file")
    text = decode_text(path.read_bytes(), f"{what} {path}")
    if not text.strip():
        raise UsageError(f"{what} {path} is empty; give a file with text")
    return text


def decode_text(data: bytes, what: str) -> str:
    """`data` as UTF-8 text; a UsageError naming `what` when it is binary or another encoding."""
    if b"\x00" in data:
        raise UsageError(f"{what} looks binary (contains NUL bytes); give UTF-8 text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} is not valid UTF-8; convert it (e.g. iconv -t UTF-8)") from None


def read_stdin_text() -> str:
    """All of standard input as text (possibly empty), checked like a file."""
    import sys

    raw = getattr(sys.stdin, "buffer", None)
    if raw is None:  # an already-decoded text stream (an embedding program, a test runner)
        return decode_text(sys.stdin.read().encode("utf-8", errors="surrogateescape"), "standard input")
    return decode_text(raw.read(), "standard input")
