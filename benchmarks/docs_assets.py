"""Regenerate every image the docs show, from real runs: `make docs-assets` (python benchmarks/docs_assets.py).

Each picture comes from a small *generator*, a function registered by name with the images it writes (the
pictures themselves are in benchmarks/docs_figures.py). A generator drives gptscratch's own library — it trains
with `gptscratch.training.train`, looks inside with `gptscratch.interpret`, times with
`gptscratch.evaluation.bench` — and returns the numbers the lessons quote. The script writes the PNGs to
docs/images/ and every number, with the machine it was measured on, to docs/images/figures.json.

    python benchmarks/docs_assets.py                     all generators (≈ 3-4 minutes on an idle 2-core CPU)
    python benchmarks/docs_assets.py --only logit_lens   one (the others' entries in figures.json stay)
    python benchmarks/docs_assets.py --list              the generators and their images
    python benchmarks/docs_assets.py --out DIR           write somewhere else (tests/test_docs_assets.py does)

Runs are made comparable from machine to machine: fixed seeds, fixed step counts (never a time budget), fp32,
one thread (for models this small, two threads on a busy 2-core machine decoded 17× slower than one: they wait
for each other), and GPTSCRATCH_ACCEL=0 (the model's own code and PyTorch's kernels, nothing chosen by timing).
Losses and head scores therefore come out nearly the same anywhere; speeds do not, which is why the lessons state
every number as a range, in a comment the tests read: `<!-- figure: NAME LO..HI -->` right after the visible
"LO–HI" (tests/test_docs_assets.py checks the committed figures.json against them; a slow test regenerates).

Adding a generator (e.g. a screenshot of an HTML view): write `def name(ctx) -> dict` that saves its images with
`ctx.image("file.png")` and returns {figure name: number or text}; register it with
`@generator("name", "file.png", ...)` in a module listed in GENERATOR_MODULES. Shared expensive work (the quick
training run) is a cached method of Context, so `--only` runs only what that picture needs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "docs" / "images"
FIGURES_FILE = "figures.json"
GENERATOR_MODULES = ("docs_figures", "docs_views")  # modules next to this file whose @generator functions are registered
DPI = 100


@dataclass
class Generator:
    name: str
    images: tuple[str, ...]
    make: Callable[[Context], dict]

    @property
    def summary(self) -> str:
        return (self.make.__doc__ or "").strip().splitlines()[0]


REGISTRY: dict[str, Generator] = {}


def generator(name: str, *images: str):
    """Register `make(ctx) -> {figure: value}` as the generator `name`, which writes `images` (into ctx.images)."""
    def register(make):
        if name in REGISTRY:
            raise ValueError(f"generator {name!r} registered twice")
        REGISTRY[name] = Generator(name, images, make)
        return make
    return register


def load_generators() -> dict[str, Generator]:
    for folder in (str(Path(__file__).resolve().parent), str(REPO)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    sys.modules.setdefault("docs_assets", sys.modules[__name__])  # one registry, even when run as __main__
    for module in GENERATOR_MODULES:
        importlib.import_module(module)
    return REGISTRY


def machine() -> str:
    """The CPU, as the docs name it: "AMD EPYC (2 cores; family 26 model 2; AVX-512; no AMX)"."""
    cores = os.cpu_count() or 1
    info: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = info.get("model name") or platform.processor() or platform.machine() or "unknown CPU"
    details = [f"{cores} cores"]
    if "cpu family" in info and "model" in info:
        details.append(f"family {info['cpu family']} model {info['model']}")
    flags = info.get("flags", "").split()
    if flags:
        details.append("AVX-512" if "avx512f" in flags else "no AVX-512")
        details.append("AMX" if "amx_tile" in flags else "no AMX")
    return f"{' '.join(name.split())} ({'; '.join(details)})"


@dataclass
class Context:
    """What generators share: where images go, a scratch folder, the machine, and cached expensive results."""

    images: Path
    work: Path
    machine: str
    log: Callable[[str], None] = print
    _cache: dict = field(default_factory=dict)

    def image(self, name: str) -> Path:
        return self.images / name

    def cached(self, key: str, build: Callable[[], object]):
        """build() once per script run (e.g. the quick training run that four pictures read)."""
        if key not in self._cache:
            started = time.perf_counter()
            self._cache[key] = build()
            self.log(f"  {key}: {time.perf_counter() - started:.0f} s")
        return self._cache[key]


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}")
    return value


def generate(out: Path = IMAGES, only: list[str] | None = None, log: Callable[[str], None] = print) -> dict:
    """Run the generators (all, or `only`) into `out`; update out/figures.json and return its content."""
    registry = load_generators()
    unknown = sorted(set(only or ()) - set(registry))
    if unknown:
        raise SystemExit(f"error: no generator named {', '.join(unknown)}; --list shows them")
    out.mkdir(parents=True, exist_ok=True)
    figures_path = out / FIGURES_FILE
    previous = json.loads(figures_path.read_text(encoding="utf-8")) if only and figures_path.is_file() else {}
    record = {"machine": machine(),   # of this run; each generator's entry keeps the machine it ran on
              "generators": {k: v for k, v in previous.get("generators", {}).items() if k in registry},
              "figures": {k: v for k, v in previous.get("figures", {}).items() if v.get("generator") in registry}}
    work = Path(tempfile.mkdtemp(prefix="gptscratch-docs-assets-"))
    saved = {key: os.environ.get(key) for key in ("GPTSCRATCH_HOME", "GPTSCRATCH_ACCEL")}
    os.environ["GPTSCRATCH_HOME"] = str(work / "home")   # datasets and runs stay out of the user's cache
    os.environ["GPTSCRATCH_ACCEL"] = "0"                  # nothing chosen by timing: comparable anywhere
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see the module docstring
    try:
        record.update(python=platform.python_version(), torch=torch.__version__.split("+")[0],
                      threads=torch.get_num_threads(), precision="fp32", accel="off")
        ctx = Context(out, work, record["machine"], log)
        for name, entry in registry.items():
            if only and name not in only:
                continue
            log(f"{name}: {entry.summary}")
            started = time.perf_counter()
            values = entry.make(ctx)
            missing = [image for image in entry.images if not ctx.image(image).is_file()]
            if missing:
                raise RuntimeError(f"generator {name} did not write {missing}")
            for image in entry.images:
                ctx.image(image).chmod(0o644)   # atomic writes create 0600 files; these are published
            for figure in [k for k, v in record["figures"].items() if v.get("generator") == name]:
                del record["figures"][figure]
            for figure, value in values.items():
                record["figures"][figure] = {"value": _rounded(value), "generator": name}
            record["generators"][name] = {"images": list(entry.images), "machine": record["machine"],
                                          "seconds": round(time.perf_counter() - started, 1)}
    finally:
        torch.set_num_threads(threads)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(work, ignore_errors=True)
    record["figures"] = dict(sorted(record["figures"].items()))
    partial = figures_path.with_suffix(".json.partial")
    partial.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    partial.replace(figures_path)
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", metavar="NAME", help="run this generator (repeatable)")
    parser.add_argument("--out", type=Path, default=IMAGES, help="folder for the images and figures.json")
    parser.add_argument("--list", action="store_true", help="list the generators and exit")
    args = parser.parse_args(argv)
    if args.list:
        for entry in load_generators().values():
            print(f"{entry.name:24} {', '.join(entry.images):60} {entry.summary}")
        return
    started = time.perf_counter()
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    record = generate(args.out, args.only, log)
    log(f"{len(record['figures'])} figures, {args.out}, {time.perf_counter() - started:.0f} s on {record['machine']}")


if __name__ == "__main__":
    main()
