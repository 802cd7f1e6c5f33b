"""The docs' pictures and the numbers the lessons quote from them (benchmarks/docs_assets.py, `make docs-assets`).

A lesson that quotes a measured number states it as a range, with a comment right after it that names the figure
in docs/images/figures.json: `1.2–1.4 nats <!-- figure: quick_val_loss 1.2..1.4 -->`. Checked here:

- fast: every such comment names a figure that figures.json holds, the committed value lies in the range, and the
  range is also written in the visible text before the comment (so the reader sees what the test checks); every
  image a page shows exists in docs/images/, and every image there is one a registered generator writes;
- slow: the generator, run again into a scratch folder, produces values inside every range and exactly the
  images that are committed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
IMAGES = DOCS / "images"
FIGURES = IMAGES / "figures.json"
PAGES = sorted([REPO / "README.md", *DOCS.rglob("*.md")])
NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"
RANGE = re.compile(rf"<!--\s*figure:\s*([\w.]+)\s+({NUMBER})\.\.({NUMBER})\s*-->")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
MAX_IMAGE_BYTES = 120 * 1024
IMAGE_FILES = ("*.png", "*.svg", "*.jpg", "*.gif", "*.webp")
# Drawn by hand rather than measured (a diagram, not a run): the only images of docs/images/ no generator writes.
HAND_MADE = {"architecture.svg"}


def ranges() -> list[tuple[str, str, float, float]]:
    """(where, figure, low, high) for every range comment in the docs."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in RANGE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(REPO)}:{line}", match.group(1), float(match.group(2)),
                          float(match.group(3))))
    return found


def committed() -> dict:
    return json.loads(FIGURES.read_text(encoding="utf-8"))


def registry() -> dict:
    spec = importlib.util.spec_from_file_location("docs_assets", REPO / "benchmarks" / "docs_assets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_assets"] = module        # docs_figures registers into this same module
    try:
        spec.loader.exec_module(module)
        return module.load_generators()
    finally:
        sys.modules.pop("docs_assets", None)
        sys.modules.pop("docs_figures", None)


def out_of_range(values: dict) -> list[str]:
    problems = []
    for where, name, low, high in ranges():
        if name not in values:
            problems.append(f"{where}: no figure {name!r} in figures.json")
            continue
        value = values[name]["value"]
        if not isinstance(value, (int, float)) or not low <= value <= high:
            problems.append(f"{where}: {name} = {value!r}, outside {low:g}..{high:g}")
    return problems


def test_the_lessons_quote_ranges_that_the_committed_figures_meet():
    found = ranges()
    assert len(found) >= 10, "the lessons lost their measured ranges (or the comment format changed)"
    assert {where.split(":")[0] for where, *_ in found} >= {
        "docs/lessons/09-training-loop.md", "docs/lessons/11-sampling-and-kv-cache.md",
        "docs/lessons/13-interpretability.md"}
    problems = out_of_range(committed()["figures"])
    assert not problems, "\n".join(problems)


def test_each_range_is_also_written_for_the_reader():
    """The comment is invisible on the site: the same range must be in the text just before it, as LO–HI."""
    hidden = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for match in RANGE.finditer(text):
            before = text[max(0, match.start() - 160):match.start()]
            if f"{match.group(2)}–{match.group(3)}" not in before:
                hidden.append(f"{page.relative_to(REPO)}: {match.group(0)} (write {match.group(2)}–{match.group(3)} "
                              "before it)")
    assert not hidden, "\n".join(hidden)


def test_figures_name_the_machine_they_were_measured_on():
    record = committed()
    assert re.search(r"\(\d+ cores", record["machine"]), record["machine"]
    assert record["precision"] == "fp32" and record["accel"] == "off"


def test_every_image_shown_exists_and_every_committed_image_is_generated():
    shown, missing = set(), []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in IMAGE.findall(text):
            if re.match(r"^[a-z]+:", target):
                continue
            path = (page.parent / target).resolve()
            if not path.is_file():
                missing.append(f"{page.relative_to(REPO)} → {target}")
            elif path.parent == IMAGES.resolve():
                shown.add(path.name)
    assert not missing, "images that do not exist:\n" + "\n".join(missing)

    generators = registry()
    written = {image for entry in generators.values() for image in entry.images}
    committed_images = {p.name for pattern in IMAGE_FILES for p in IMAGES.glob(pattern)} - HAND_MADE
    assert committed_images == written, (f"orphans (no generator writes them): {committed_images - written}; "
                                         f"never generated: {written - committed_images}")
    assert shown <= written | HAND_MADE
    assert HAND_MADE <= {p.name for p in IMAGES.iterdir()}, "HAND_MADE lists an image that is gone"
    assert set(committed()["generators"]) == set(generators), "figures.json is not from the registered generators"
    large = {p.name: p.stat().st_size for p in IMAGES.glob("*.png") if p.stat().st_size > MAX_IMAGE_BYTES}
    assert not large, f"images over {MAX_IMAGE_BYTES // 1024} KB: {large}"


@pytest.mark.slow
def test_regenerated_figures_stay_in_the_stated_ranges(tmp_path):
    """The whole generator, from scratch (trains the quick preset, the over-fitting run and the toy circuit)."""
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "docs_assets.py"), "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-4000:]
    fresh = json.loads((tmp_path / "figures.json").read_text(encoding="utf-8"))
    problems = out_of_range(fresh["figures"])
    assert not problems, "\n".join(problems) + f"\n(measured on {fresh['machine']})"
    assert {p.name for p in tmp_path.glob("*.png")} == {p.name for p in IMAGES.glob("*.png")}
