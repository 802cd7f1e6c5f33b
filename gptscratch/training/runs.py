"""Looking at runs: a summary row per run folder, terminal sparklines, and a PNG of the curves.

Everything here reads files only — config.json of the newest checkpoint, metrics.jsonl, and the safetensors
header (an 8-byte length + JSON listing each tensor's shape) to count parameters without loading weights —
so `gptscratch train runs` stays fast with many runs and never imports torch.
"""

from __future__ import annotations

import json
import math
import struct
import time
from pathlib import Path

from .. import checkpoint as ckpt
from ..errors import UsageError
from ..paths import runs_root
from . import metrics

SPARK = "▁▂▃▄▅▆▇█"


def stored_parameters(model_file: Path) -> int | None:
    """Number of stored weights in a safetensors file, from its header alone."""
    try:
        with open(model_file, "rb") as handle:
            (length,) = struct.unpack("<Q", handle.read(8))
            header = json.loads(handle.read(length))
    except (OSError, ValueError, struct.error):
        return None
    return sum(math.prod(v["shape"]) for k, v in header.items() if k != "__metadata__")


def summarize(run_dir: Path) -> dict:
    """One run's row: name, steps, tokens, best/last val loss, model shape and size, path."""
    run_dir = Path(run_dir)
    checkpoint = ckpt.resolve_checkpoint(run_dir)
    config = ckpt.read_config(checkpoint)
    training, model = config.get("training", {}), config.get("model", {})
    best = training.get("best_val_loss")
    records = metrics.read(run_dir)
    val = [r["val_loss"] for r in records if "val_loss" in r]
    if val:
        best = min(val) if best is None else min(best, min(val))
    return {
        "name": run_dir.name, "path": str(run_dir), "step": training.get("step"), "tokens": training.get("tokens"),
        "val_loss": training.get("val_loss"), "best_val_loss": best, "elapsed": training.get("elapsed"),
        "shape": f"{model.get('n_layer')}×{model.get('d_model')}×{model.get('n_head')}h ctx {model.get('context_length')}",
        "parameters": stored_parameters(checkpoint / ckpt.MODEL_FILE), "tokenizer": config["tokenizer"].get("name"),
        "updated": config.get("created"),
    }


def list_run_summaries(root: Path | None = None) -> list[dict]:
    """Rows for every run folder under `root` (default: the cache's runs folder), newest first."""
    if root is None:
        folders = ckpt.list_runs()
    else:
        root = Path(root).expanduser()
        if not root.is_dir():
            raise UsageError(f"{root} is not a folder; pass the folder that holds run folders")
        folders = sorted((p for p in root.iterdir() if p.is_dir() and ckpt._checkpoint_in(p) is not None),
                         key=lambda p: p.stat().st_mtime, reverse=True)
    rows = []
    for folder in folders:
        try:
            rows.append(summarize(folder))
        except Exception as exc:  # noqa: BLE001 - one damaged run must not hide the others
            rows.append({"name": folder.name, "path": str(folder), "error": " ".join(str(exc).split())})
    return rows


def curves(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """(step, value) series of train loss, val loss and learning rate from metrics.jsonl."""
    records = metrics.read(Path(run_dir))
    if not records:
        raise UsageError(f"{Path(run_dir) / metrics.METRICS_FILE} is missing or empty; pass a run folder "
                         "(see `gptscratch train runs`)")
    series: dict[str, list[tuple[int, float]]] = {"train loss": [], "val loss": [], "lr": []}
    for record in records:
        for key, label in (("loss", "train loss"), ("val_loss", "val loss"), ("lr", "lr")):
            if isinstance(record.get(key), (int, float)):
                series[label].append((record["step"], float(record[key])))
    return series


def sparkline(values: list[float], width: int = 48) -> str:
    """Values bucketed (mean) into at most `width` characters of ▁..█, low to high."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return ""
    if len(values) > width:
        size = len(values) / width
        values = [sum(chunk) / len(chunk) for chunk in
                  (values[int(i * size):max(int((i + 1) * size), int(i * size) + 1)] for i in range(width))]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(SPARK[min(int((v - low) / span * (len(SPARK) - 1) + 0.5), len(SPARK) - 1)] for v in values)


def summary_lines(series: dict) -> list[dict]:
    """Per curve: name, sparkline, first, last, min value and the step of the min."""
    rows = []
    for name, points in series.items():
        if not points:
            continue
        values = [v for _, v in points]
        best_step, best = min(points, key=lambda p: p[1])
        rows.append({"name": name, "spark": sparkline(values), "first": values[0], "last": values[-1],
                     "min": best, "min_step": best_step, "points": len(points)})
    return rows


def check_png_path(path: Path) -> Path:
    """`train plot --out`: see gptscratch.paths.check_png_destination."""
    from gptscratch.paths import check_png_destination

    return check_png_destination(path, "--out")


def plot_png(series: dict, path: Path, title: str = "") -> Path:
    """Train/val loss (top) and learning rate (bottom) against step, as a PNG. Needs matplotlib."""
    check_png_path(path)
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise UsageError("the PNG needs matplotlib: `pip install matplotlib` (or `gptscratch[plot]`); the "
                         "terminal summary needs nothing") from None
    from ..atomic import atomic_path

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True, height_ratios=[3, 1])
    for name, style in (("train loss", "-"), ("val loss", "o-")):
        if series.get(name):
            steps, values = zip(*series[name])
            top.plot(steps, values, style, label=name, markersize=3)
    top.set_ylabel("loss (nats/token)")
    top.legend()
    top.grid(alpha=0.3)
    top.set_title(title)
    if series.get("lr"):
        steps, values = zip(*series["lr"])
        bottom.plot(steps, values, color="tab:green")
    bottom.set_ylabel("learning rate")
    bottom.set_xlabel("step")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path


def new_run_dir(label: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = runs_root() / f"{stamp}-{label}"
    suffix = 1
    while path.exists():
        suffix += 1
        path = runs_root() / f"{stamp}-{label}-{suffix}"
    return path
