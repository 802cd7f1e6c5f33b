"""metrics.jsonl: the run's log, one JSON object per line, appended as training goes.

    {"step": 10, "loss": 2.31, "lr": 0.002, "tokens": 20480, "tokens_per_s": 17000.0, "elapsed": 1.2}
    {"step": 100, "val_loss": 1.52, "val_perplexity": 4.57, "sample": "..."}
    {"step": 11, "debug": {...}}                                                  (with --debug)

Appending one line at a time means a kill -9 can leave a half-written last line: readers skip lines that do
not parse instead of failing, and a resumed run first rewrites the file (atomically) without the lines of
steps after its checkpoint, which it is about to train again.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text

METRICS_FILE = "metrics.jsonl"


def append(run_dir: Path, record: dict) -> None:
    with open(Path(run_dir) / METRICS_FILE, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def read(run_dir: Path) -> list[dict]:
    """Every complete record of a run's log, in order (unparsable lines skipped)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def truncate_after(run_dir: Path, step: int) -> None:
    """Keep only records of steps ≤ `step` (and drop any broken line)."""
    path = Path(run_dir) / METRICS_FILE
    if path.is_file():
        kept = [r for r in read(run_dir) if r.get("step", 0) <= step]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
