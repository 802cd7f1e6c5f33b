"""Heatmaps for the interpretability tools (matplotlib, an optional extra, imported only when plotting).

One function draws any number of labelled matrices side by side and writes a PNG atomically. The tools
choose what to draw: attention patterns (query × key), logit-lens probabilities (layer × position),
induction and detection scores (layer × head), patching results (row × position, layer × head; a diverging
colour map centred on 0 so that negative effects show).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..atomic import atomic_path
from ..errors import UsageError


@dataclass
class Heatmap:
    values: list                         # rows × columns of numbers (None = blank)
    title: str = ""
    row_labels: list = field(default_factory=list)
    col_labels: list = field(default_factory=list)
    xlabel: str = ""
    ylabel: str = ""
    vmin: float | None = None
    vmax: float | None = None
    diverging: bool = False              # red/blue around 0 instead of a sequential map
    annotations: list | None = None      # rows × columns of short strings drawn in the cells


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise UsageError("--plot needs matplotlib, which is not installed; install it with "
                         "`pip install matplotlib` (or the gptscratch[plot] extra), or drop --plot") from None
    matplotlib.use("Agg")  # files only: never open a window, works without a display
    import matplotlib.pyplot as plt

    return plt


def check_plot_path(path) -> Path:
    """`--plot`: see gptscratch.paths.check_png_destination."""
    from gptscratch.paths import check_png_destination

    return check_png_destination(path, "--plot")


def save_heatmaps(path, maps: list[Heatmap], title: str = "") -> Path:
    """Draw the heatmaps in one row and write them to `path` (PNG); returns the path."""
    import numpy as np

    path = check_plot_path(path)
    plt = _pyplot()
    widths = [max(3.0, 0.35 * len(m.col_labels or m.values[0]) + 1.5) for m in maps]
    height = max(3.0, 0.35 * max(len(m.row_labels or m.values) for m in maps) + 1.5)
    figure, axes = plt.subplots(1, len(maps), figsize=(min(sum(widths), 40), min(height, 30)), squeeze=False)
    for axis, heatmap in zip(axes[0], maps):
        values = np.array([[np.nan if v is None else v for v in row] for row in heatmap.values], dtype=float)
        vmin, vmax, cmap = heatmap.vmin, heatmap.vmax, "viridis"
        if heatmap.diverging:
            bound = max(abs(np.nanmin(values)), abs(np.nanmax(values)), 1e-9) if values.size else 1.0
            vmin, vmax, cmap = -bound, bound, "RdBu_r"
        image = axis.imshow(values, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
        axis.set_title(heatmap.title, fontsize=10)
        axis.set_xlabel(heatmap.xlabel)
        axis.set_ylabel(heatmap.ylabel)
        if heatmap.col_labels:
            axis.set_xticks(range(len(heatmap.col_labels)), heatmap.col_labels, rotation=90, fontsize=7)
        if heatmap.row_labels:
            axis.set_yticks(range(len(heatmap.row_labels)), heatmap.row_labels, fontsize=7)
        if heatmap.annotations is not None:
            for r, row in enumerate(heatmap.annotations):
                for c, text in enumerate(row):
                    if text:
                        axis.text(c, r, text, ha="center", va="center", fontsize=6, color="white")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)
    return path
