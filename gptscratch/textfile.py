"""Reading a text file the user named (a prompt file, a file to score): UTF-8, not binary, not empty.

Each failure is a UsageError (exit 2) whose one line names the file and the fix.
"""

from __future__ import annotations

from pathlib import Path

from .errors import UsageError


def read_text_file(path, what: str = "file") -> str:
    """The file's text; `what` names it in messages (e.g. "prompt file")."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{what} {path} does not exist; give the path of a UTF-8 text file")
    data = path.read_bytes()
    if b"\x00" in data:
        raise UsageError(f"{what} {path} looks binary (contains NUL bytes); give a UTF-8 text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not valid UTF-8; convert it (e.g. iconv -t UTF-8)") from None
    if not text.strip():
        raise UsageError(f"{what} {path} is empty; give a file with text")
    return text
