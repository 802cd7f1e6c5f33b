"""Atomic file writes: readers never observe a half-written file.

Recipe: write to a temporary file in the *same directory* as the target (so both live on the
same filesystem), flush + fsync, then `os.replace` it onto the target. `os.replace` is atomic
on POSIX and Windows, so the target is either the old complete file or the new complete file.
If anything fails before the replace, the temporary file is deleted and the original is left
untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success move it onto `path`.

    The caller writes the temp path however it likes (e.g. a library that only accepts a
    filename, such as safetensors). On exception the temp file is removed and re-raised.
    Parent directories are created if missing.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # mkstemp gives a unique name so concurrent writers of the same target never collide.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        # BaseException so Ctrl-C mid-write also cleans up the temp file.
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` to `path` atomically (fsynced before the rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` as UTF-8 to `path` atomically (no newline translation)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write `obj` as indented, key-sorted JSON (plus trailing newline) atomically.

    The object is serialised *before* the file is opened, so an unserialisable object
    raises without touching the disk.
    """
    text = json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    atomic_write_text(path, text)
