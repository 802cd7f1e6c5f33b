"""A training run's report card: everything `gptscratch train report RUN` shows, as one JSON-ready dictionary.

Like gptscratch/training/runs.py it reads files only — the newest checkpoint's config.json and trainer_state.json,
metrics.jsonl and the dataset's manifest — so it never imports torch and works on a run copied from another
machine. The HTML page (gptscratch/views, view "report") draws its charts from this same dictionary.

    summary   name, steps, tokens, last and best validation loss, shape, parameters, tokenizer, seconds
    series    (step, value) curves: train loss, val loss, lr, tokens/s
    samples   the text generated at each evaluation, with its step and validation loss
    config    the checkpoint's config.json, plus the training options it was started with (train_config)
    dataset   the prepared dataset's description (`gptscratch data info`), when it is still in the cache
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import checkpoint as ckpt
from . import metrics
from .runs import curves, summarize

TRAINER_STATE_FILE = "trainer_state.json"


def run_report(run_dir: Path) -> dict:
    """The report of the run in `run_dir` (a folder holding metrics.jsonl and checkpoints)."""
    run_dir = Path(run_dir)
    series = curves(run_dir)                 # UsageError when metrics.jsonl is missing or empty
    records = metrics.read(run_dir)
    series["tokens/s"] = [(r["step"], float(r["tokens_per_s"])) for r in records
                          if isinstance(r.get("tokens_per_s"), (int, float))]
    samples = [{"step": r["step"], "val_loss": r.get("val_loss"), "sample": r["sample"]} for r in records
               if isinstance(r.get("sample"), str)]
    checkpoint = ckpt.resolve_checkpoint(run_dir)
    config = ckpt.read_config(checkpoint)
    state_file = checkpoint / TRAINER_STATE_FILE
    if state_file.is_file():
        try:
            config["train_config"] = json.loads(state_file.read_text(encoding="utf-8")).get("train_config")
        except ValueError:
            pass                             # a damaged state file costs the report one section, nothing more
    return {"run": str(run_dir), "summary": summarize(run_dir),
            "series": {name: [list(point) for point in points] for name, points in series.items()},
            "samples": samples, "config": config, "dataset": dataset_description(config)}


def dataset_description(config: dict) -> dict | None:
    """`gptscratch data info` of the run's dataset, or just its name when it is no longer in the cache."""
    name = config.get("training", {}).get("data")
    if not name:
        return None
    from ..data.dataset import find_dataset_folder, open_dataset

    if find_dataset_folder(name) is None:
        return {"name": name, "note": "not in this machine's cache (prepared elsewhere or removed)"}
    try:
        info = open_dataset(name).info()
        info.pop("shard_files", None)        # every shard's checksum: `gptscratch data info --json` has them
        return info
    except Exception as exc:  # noqa: BLE001 - a damaged dataset must not hide the rest of the report
        return {"name": name, "note": f"could not be read: {' '.join(str(exc).split())}"}
