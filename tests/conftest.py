"""Shared test fixtures.

Every test runs hermetically: its own GPTSCRATCH_HOME (so nothing touches the user's cache),
Hugging Face offline flags (a hub lookup fails at once instead of retrying for ~20 s), and
GPTSCRATCH_DEVICE=cpu (tests never depend on a GPU being present).

torch is deliberately NOT imported here: tests that need it import it, and CLI start-up
tests must be able to prove that importing the CLI does not load it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# A job started in the background by a non-interactive shell (as CI runners may start this suite) inherits SIGINT
# *ignored*, and an ignored signal stays ignored across exec: the gptscratch subprocesses that the Ctrl-C tests
# interrupt would never see it. A Python-level handler here is reset to the default in every child instead.
if hasattr(signal, "SIGINT") and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

HERMETIC_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "GPTSCRATCH_DEVICE": "cpu",
}


@pytest.fixture(scope="session")
def shared_measurements(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One measurements file for the whole session: what gptscratch.accel timed on this machine (which precision
    trains or decodes a shape faster) is a fact about the machine, so tests share it instead of re-timing."""
    return tmp_path_factory.mktemp("accel") / "measurements.json"


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_measurements: Path) -> Path:
    """Point GPTSCRATCH_HOME at a per-test folder and force offline, CPU-only behaviour."""
    home = tmp_path / "gptscratch-home"
    monkeypatch.setenv("GPTSCRATCH_HOME", str(home))
    monkeypatch.setenv("GPTSCRATCH_MEASUREMENTS", str(shared_measurements))
    for name, value in HERMETIC_ENV.items():
        monkeypatch.setenv(name, value)
    return home


@pytest.fixture
def tiny_model() -> Callable[..., Any]:
    """The tests' small GPT, as a factory: `tiny_model(**overrides)` builds a fresh, seeded model in eval mode.

    Default shape (TINY_MODEL in tests/helpers.py): vocab 101, context 32, 2 layers, 4 heads, d_model 32.
    Overrides: any ModelConfig field (`tiny_model(positional="rope", vocab_size=320)`), plus `seed=` (default 0;
    torch's global generator is seeded with it right before the weights are drawn), `dtype=` and `device=`.
    Call `.train()` on the result where a test needs training mode. Outside a test function (module-scoped
    fixtures, helper functions) use helpers.build_tiny_model, which this returns.
    """
    from helpers import build_tiny_model  # imports torch only when called

    return build_tiny_model


@pytest.fixture
def gptscratch_home(hermetic_env: Path) -> Path:
    """The GPTSCRATCH_HOME of the current test (not created; code under test creates it)."""
    return hermetic_env


RunCli = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture
def run_cli() -> RunCli:
    """Run `python -m gptscratch *args` in a subprocess from the repo root.

    Usage: `result = run_cli("info", "--json", input=None, env={"X": "1"})`; returns the
    CompletedProcess (text stdout/stderr captured, no check). `env` entries override the
    hermetic environment; a value of None removes the variable.
    """

    def run(
        *args: str,
        input: str | None = None,
        env: Mapping[str, str | None] | None = None,
        timeout: float = 300,
    ) -> subprocess.CompletedProcess[str]:
        full_env = dict(os.environ)  # already hermetic thanks to the autouse fixture
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        full_env.setdefault("COLUMNS", "200")  # keep rich from wrapping lines we assert on
        full_env["PYTHONIOENCODING"] = "utf-8"
        for name, value in (env or {}).items():
            if value is None:
                full_env.pop(name, None)
            else:
                full_env[name] = value
        return subprocess.run(
            [sys.executable, "-m", "gptscratch", *args],
            cwd=REPO_ROOT,
            env=full_env,
            input=input,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=timeout,
        )

    return run
