"""Checks before the first step: is the run folder free, can it be written, is there room for its checkpoints?

Hours of compute lost because the last checkpoint could not be written is the failure this prevents. Two
things are detectable up front:
  - an unwritable output folder (permissions, a file in the way, a read-only mount): we create the folder and
    write + delete a probe file in it;
  - too little free space: a run keeps `latest/` and `best/` and writes a new checkpoint beside the old one
    before swapping (checkpoint.py), so a new run needs ~3 checkpoints of room (≈ 12 bytes per parameter
    each, estimate.py) and a resumed one ~1 more.
And one thing must never happen: a new run written into a folder that already holds one. Its checkpoints
would replace `latest/` and `best/` and its log would be appended to the old metrics.jsonl — the old run lost
and the new one's curves mixed with it. So a new run refuses a folder holding a run (an empty or unrelated
folder is fine); continuing one is `--resume`.
Disk filling up *during* the run cannot be predicted; then the save fails, the previous checkpoint stays
intact (the swap never happened) and the loop stops with a TrainingError naming the fix.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from ..errors import UsageError
from ..checkpoint import RUN_CHECKPOINTS
from .estimate import human_bytes


# What a run leaves in its folder: its checkpoint folders and its metrics log.
RUN_MARKERS = (*RUN_CHECKPOINTS, "metrics.jsonl")


def check_new_run_dir(run_dir: Path) -> None:
    """Raise UsageError if `run_dir` already holds a training run (checked before anything is written)."""
    run_dir = Path(run_dir)
    found = [name for name in RUN_MARKERS if (run_dir / name).exists()]
    if not found:
        return
    if any((run_dir / name / "config.json").is_file() for name in found if name != "metrics.jsonl"):
        raise UsageError(f"{run_dir} already holds a run; pass --resume {run_dir} to continue it, or choose "
                         "another --out")
    raise UsageError(f"{run_dir} already holds part of a run ({', '.join(found)}) with no complete checkpoint to "
                     "resume; choose another --out, or delete that folder first")


def check_run_dir(run_dir: Path, checkpoint_bytes: float, resuming: bool = False) -> None:
    """Raise UsageError (before any training) if `run_dir` cannot hold the run's checkpoints."""
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=run_dir)
        try:
            os.write(fd, b"gptscratch")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UsageError(f"cannot write to the run folder {run_dir} ({reason}); pass --out with a writable "
                         "folder") from None
    needed = checkpoint_bytes * (1 if resuming else 3)
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise UsageError(f"not enough disk space in {run_dir}: {human_bytes(free)} free, the run's checkpoints "
                         f"need about {human_bytes(needed)}; free space or pass --out on another disk")
