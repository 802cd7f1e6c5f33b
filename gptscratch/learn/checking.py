"""Running an exercise's checks on a learner's file, and the comparisons the checks are written with.

A check is a function `check(learner)` that calls the learner's functions on seeded inputs, computes the same
thing with gptscratch's own code, and raises `Mismatch` with a one- or two-line message ("expected …, got …")
when they differ. `run_checks` loads the learner's file fresh (no bytecode cache: an edited file is always the
one checked), runs every check with torch's random generator seeded to 0 and restored afterwards, and turns
every outcome into a `CheckResult` — a function still raising NotImplementedError, a function the file lacks,
or any other exception included — so one broken function never hides the results of the others.
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from .catalog import Exercise


class Mismatch(AssertionError):
    """A check found the learner's result different from gptscratch's; the message says how."""


@dataclass
class CheckResult:
    name: str
    passed: bool
    message: str = ""     # empty when passed; otherwise what was expected and what came back
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


class CheckList:
    """An exercise's checks in order. `@CHECKS.add("what it checks")` registers a function check(learner)."""

    def __init__(self) -> None:
        self.checks: list[tuple[str, Callable]] = []

    def add(self, name: str) -> Callable[[Callable], Callable]:
        def register(function: Callable) -> Callable:
            self.checks.append((name, function))
            return function
        return register

    def __iter__(self) -> Iterator[tuple[str, Callable]]:
        return iter(self.checks)

    def __len__(self) -> int:
        return len(self.checks)


def checks_of(exercise: Exercise) -> CheckList:
    return importlib.import_module(exercise.checks_module).CHECKS


def load_learner(path: Path) -> types.ModuleType:
    """Execute the learner's file as a fresh module (never from a cached .pyc) and return it. Its folder is on
    sys.path while it runs, so one exercise may import another (`from ex03_attention import attention`)."""
    source = Path(path).read_text(encoding="utf-8")
    name = f"gptscratch_learner_{Path(path).stem}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    folder = str(Path(path).resolve().parent)
    sys.modules[name] = module        # while it runs, so dataclasses and the like can find their module
    sys.path.insert(0, folder)
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 - running the learner's code is the point
    finally:
        sys.modules.pop(name, None)
        if folder in sys.path:
            sys.path.remove(folder)
    return module


def run_checks(exercise: Exercise, path: Path) -> list[CheckResult]:
    """Every check of `exercise` on the file at `path`, in order. An import failure is one failed result."""
    import torch

    path = Path(path)
    folder = str(path.resolve().parent)
    before = set(sys.modules)
    # The learner's folder stays importable while the checks run (a function may import a sibling exercise when
    # called), and whatever was imported from it is forgotten afterwards: the next check, in this process or a
    # notebook, loads the learner's files fresh.
    sys.path.insert(0, folder)
    threads = torch.get_num_threads()
    try:
        try:
            learner = load_learner(path)
        except Exception as error:  # noqa: BLE001 - a learner's syntax error is a result, not a crash
            return [CheckResult(f"import {path.name}", False, _describe(error, path, None))]
        # The inputs are tiny: one thread computes them fastest, and several would wait on each other on a busy CPU.
        torch.set_num_threads(1)
        with torch.random.fork_rng(devices=[]):
            return _run_each(checks_of(exercise), learner, path)
    finally:
        torch.set_num_threads(threads)
        if folder in sys.path:
            sys.path.remove(folder)
        for name in set(sys.modules) - before:
            if str(getattr(sys.modules[name], "__file__", None) or "").startswith(folder + os.sep):
                del sys.modules[name]


def _run_each(checks: CheckList, learner, path: Path) -> list[CheckResult]:
    import torch

    results = []
    for name, check in checks:
        torch.manual_seed(0)
        start = time.perf_counter()
        try:
            check(learner)
            passed, message = True, ""
        except Mismatch as mismatch:
            passed, message = False, " ".join(str(mismatch).split())
        except Exception as error:  # noqa: BLE001 - whatever the learner's code raises is reported
            passed, message = False, _describe(error, path, learner)
        results.append(CheckResult(name, passed, message, round(time.perf_counter() - start, 4)))
    return results


def _describe(error: BaseException, path: Path, learner) -> str:
    """One line: what went wrong and, when it happened in the learner's file, where."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == str(path)]
    where = f" at {path.name}:{frames[-1].lineno} in `{frames[-1].name}`" if frames else ""
    if isinstance(error, NotImplementedError) and frames:
        return f"`{frames[-1].name}` is not written yet (it raises NotImplementedError); write its body"
    if isinstance(error, AttributeError) and learner is not None and getattr(error, "obj", None) is learner:
        return f"{path.name} defines no `{error.name}`; keep the stub's function names"
    if isinstance(error, SyntaxError):
        return f"{path.name}:{error.lineno}: SyntaxError: {error.msg}"
    text = " ".join(str(error).split())
    text = text if len(text) <= 240 else text[:237] + "..."
    return f"raised {type(error).__name__}{where}: {text}"


# -- comparisons ---------------------------------------------------------------------------------------------------
def _shape(t) -> str:
    return str(tuple(t.shape))


def expect_tensor(what: str, got, expected) -> None:
    """`got` is a tensor of `expected`'s shape."""
    import torch

    if not torch.is_tensor(got):
        raise Mismatch(f"{what}: expected a tensor of shape {_shape(expected)}, got {type(got).__name__}")
    if tuple(got.shape) != tuple(expected.shape):
        raise Mismatch(f"{what}: expected shape {_shape(expected)}, got {_shape(got)}")


def expect_close(what: str, got, expected, *, atol: float, rtol: float = 0.0) -> None:
    """`got` equals `expected` entry by entry within |got − expected| ≤ atol + rtol·|expected| (infinities must
    match exactly). The message names the first differing entry and how many differ."""
    import torch

    expect_tensor(what, got, expected)
    got64, want = got.detach().double().cpu(), expected.detach().double().cpu()
    bad = ~torch.isclose(got64, want, rtol=rtol, atol=atol)
    if not bad.any():
        return
    first = tuple(int(i) for i in bad.nonzero()[0])
    diff = (got64 - want).abs()
    worst = diff[bad & diff.isfinite()].max().item() if (bad & diff.isfinite()).any() else float("inf")
    index = f"[{', '.join(map(str, first))}]" if first else ""
    tolerance = f"{atol:g}" + (f" + {rtol:g}·|expected|" if rtol else "")
    raise Mismatch(f"{what}{index}: expected {want[first].item():.6g}, got {got64[first].item():.6g} "
                   f"({int(bad.sum())} of {bad.numel()} entries differ, largest difference {worst:.3g}; "
                   f"tolerance {tolerance})")


def expect_equal(what: str, got, expected) -> None:
    """Exact equality of plain values (ints, lists, tuples, booleans)."""
    if got != expected:
        raise Mismatch(f"{what}: expected {_short(expected)}, got {_short(got)}")


def expect_number(what: str, got, expected: float, *, rel: float, abs_tol: float = 0.0) -> None:
    """A number (a Python float or a one-element tensor) within abs_tol + rel·|expected| of `expected`."""
    import torch

    if torch.is_tensor(got) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        raise Mismatch(f"{what}: expected a number ≈ {expected:.6g}, got {type(got).__name__}")
    if not abs(got - expected) <= abs_tol + rel * abs(expected):
        tolerance = " + ".join(([f"{abs_tol:g}"] if abs_tol else []) + [f"{rel:g}·|expected|"])
        raise Mismatch(f"{what}: expected {expected:.8g}, got {got:.8g} (tolerance {tolerance})")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# -- inputs --------------------------------------------------------------------------------------------------------
TINY = dict(vocab_size=101, context_length=32, n_layer=2, n_head=4, d_model=32)


def tiny_model(**overrides):
    """A small GPT (TINY updated with `overrides`), its weights drawn from torch's generator, in eval mode."""
    from ..model import GPT, ModelConfig

    return GPT(ModelConfig(**{**TINY, **overrides})).eval()


def randomized(module, scale: float):
    """`module` in eval mode with every parameter redrawn from N(0, scale²): a freshly built layer has zeros and
    ones (norms, biases, LoRA's B) that would hide a learner's mistake in those terms."""
    import torch

    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn_like(parameter) * scale)
    return module.eval()
