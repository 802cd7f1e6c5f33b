"""The learner's work folder (`./gptscratch-exercises/` by default): the copied stubs, and what the last check of
each file found.

    start(exercise, folder, force)   copy the stub in; a file holding the learner's work is never replaced
                                     without `force`
    learner_file(exercise, folder)   the file `check` reads; UsageError (with the `start` command) when missing
    record(…) / status(…)            .progress.json: per exercise, the checked file's SHA-256 and how many
                                     checks passed, so `learn list` can show progress without rerunning them
"""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write_bytes, atomic_write_json
from ..errors import UsageError
from .catalog import Exercise

DEFAULT_FOLDER = Path("gptscratch-exercises")
PROGRESS_FILE = ".progress.json"


@dataclass
class Started:
    path: Path
    created: bool        # False: the file was already there with the stub's text (nothing to do)


def _start_command(exercise: Exercise, folder: Path) -> str:
    where = "" if Path(folder) == DEFAULT_FOLDER else f" --dir {shlex.quote(str(folder))}"
    return f"gptscratch learn start {exercise.id}{where}"


def start(exercise: Exercise, folder: Path = DEFAULT_FOLDER, force: bool = False) -> Started:
    """Copy the exercise's stub to folder/exNN_topic.py (creating the folder). A file already there that differs
    from the stub is the learner's work: UsageError unless `force`."""
    target = Path(folder) / exercise.filename
    stub = exercise.stub_text().encode("utf-8")
    if Path(folder).exists() and not Path(folder).is_dir():
        raise UsageError(f"--dir {folder} is a file, not a folder; choose a folder for your exercises")
    if target.is_dir():
        raise UsageError(f"{target} is a folder; choose another --dir")
    if target.exists() and not force:
        if target.read_bytes() == stub:
            return Started(target, created=False)
        raise UsageError(f"{target} already exists and holds your work; keep it, or pass --force to replace it "
                         "with a fresh stub")
    atomic_write_bytes(target, stub)
    return Started(target, created=True)


def learner_file(exercise: Exercise, folder: Path = DEFAULT_FOLDER) -> Path:
    """The learner's file for `exercise`; UsageError naming the `learn start` command when it does not exist."""
    path = Path(folder) / exercise.filename
    if not path.is_file():
        raise UsageError(f"{path} does not exist; run `{_start_command(exercise, folder)}` first")
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_progress(folder: Path) -> dict:
    try:
        data = json.loads((Path(folder) / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}                      # none yet, or unreadable: progress is a convenience, never an error
    return data if isinstance(data, dict) else {}


def record(exercise: Exercise, folder: Path, path: Path, passed: int, total: int) -> bool:
    """Remember the outcome of checking `path` (its digest, passed / total) in the folder's progress file.
    Returns False when the file cannot be written (a read-only folder): progress is a convenience."""
    progress = _read_progress(folder)
    progress[exercise.id] = {"sha256": _digest(path), "passed": passed, "total": total}
    try:
        atomic_write_json(Path(folder) / PROGRESS_FILE, progress)
    except OSError:
        return False
    return True


def status(exercise: Exercise, folder: Path = DEFAULT_FOLDER) -> str:
    """'not started', 'started' (never checked), 'passed 4/4', '2/4 pass', or '… (edited since)'."""
    path = Path(folder) / exercise.filename
    if not path.is_file():
        return "not started"
    last = _read_progress(folder).get(exercise.id)
    if not isinstance(last, dict) or not {"sha256", "passed", "total"} <= set(last):
        return "started"
    outcome = (f"passed {last['passed']}/{last['total']}" if last["passed"] == last["total"]
               else f"{last['passed']}/{last['total']} pass")
    return outcome if last["sha256"] == _digest(path) else f"{outcome} (edited since)"
