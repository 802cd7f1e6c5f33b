"""Who may change a dataset folder: one process at a time, and a replacement never loses the old copy.

`dataset_lock(name)` is an exclusive file lock per dataset name, kept under cache_root()/locks
(outside the data folder, so deleting a dataset never deletes its lock): two prepares of one
name never write at once (the second waits and then finds the work done), and `data rm` does
not remove a dataset that is being prepared.

Replacing a dataset (--overwrite, or its source changed) never deletes it up front: set_aside()
moves the old folder to `.<name>.replaced` (replaced_folder), where it waits until the new one
is complete; restore_replaced() brings it back if the new build fails or is interrupted.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from gptscratch import paths
from gptscratch.errors import UsageError


@contextmanager
def dataset_lock(name: str, emit: Callable[[dict], None], wait: bool = True):
    """Exclusive per-dataset file lock (under cache_root()/locks, outside the data folder)."""
    from filelock import FileLock, Timeout

    folder = paths.cache_root() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / f"data-{name}.lock"))
    try:
        lock.acquire(timeout=0.2)
    except Timeout:
        if not wait:
            raise UsageError(f"dataset {name!r} is being prepared by another process; wait for it to finish") from None
        emit({"message": f"waiting for another prepare of {name} to finish"})
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def replaced_folder(target: Path) -> Path:
    """Where a dataset being replaced waits until its successor is complete (hidden: `data list` skips it,
    and dataset names cannot start with '.', so it never collides with one)."""
    return target.with_name(f".{target.name}.replaced")


def set_aside(target: Path) -> None:
    """Move the existing dataset out of the way instead of deleting it: it is deleted only once the new one
    is complete, and restored if the new build fails (e.g. the source turns out to be binary) or is interrupted."""
    aside = replaced_folder(target)
    shutil.rmtree(aside, ignore_errors=True)
    target.rename(aside)


def restore_replaced(target: Path) -> None:
    """Put the set-aside dataset back in place of a partial new build (nothing to do when none was set aside)."""
    aside = replaced_folder(target)
    if aside.is_dir():
        shutil.rmtree(target, ignore_errors=True)  # the partial new build
        aside.rename(target)
