"""Guided mode, driven through a pseudo-terminal (pexpect) the way a person would use it.

Most tests start the menu directly (LAUNCHER: run_guided on the real app, without the global options' start-up);
test_real_entry_point_opens_the_menu_on_a_terminal shows that `gptscratch` with no arguments opens the same menu.
"""

import os
import subprocess
import sys
import time

import pytest

pexpect = pytest.importorskip("pexpect")

import typer  # noqa: E402

from gptscratch.cli import app  # noqa: E402
from gptscratch.cli.guided import generic_flow, menu_commands, Questions  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAUNCHER = "from gptscratch.cli import app; from gptscratch.cli.guided import run_guided; run_guided(app)"


def env():
    return {**os.environ, "PYTHONPATH": REPO, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}


def spawn(*args):
    return pexpect.spawn(sys.executable, list(args), cwd=REPO, env=env(), encoding="utf-8", timeout=20,
                         dimensions=(50, 200))


def finish(child) -> int:
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_menu_lists_exactly_the_registered_commands():
    child = spawn("-c", LAUNCHER)
    child.expect("What would you like to do")
    menu = child.before
    registered = [name for name, _ in menu_commands(app)]
    assert {"train", "generate", "data"} <= set(registered)
    for number, name in enumerate(registered, 1):
        assert f"{number}  {name}" in menu
    assert f"{len(registered) + 1}  " not in menu      # and nothing else is offered
    child.sendintr()
    assert finish(child) == 130


def test_data_list_runs_the_command_it_shows():
    child = spawn("-c", LAUNCHER)
    child.expect("What would you like to do")
    child.sendline("data")
    child.expect("which one")
    child.sendline("list")
    child.expect("Other options")
    child.sendline("--json")
    child.expect("The same as typing:")
    child.expect("gptscratch data list --json")
    child.expect(r"Run it now\?")
    child.sendline("")                      # Enter = yes
    child.expect(r"\[\]")                   # an empty cache: the JSON list of datasets
    assert finish(child) == 0


def test_train_flow_shows_the_command_and_can_decline():
    child = spawn("-c", LAUNCHER)
    child.expect("What would you like to do")
    child.sendline("1")
    child.expect("Text to train on")
    child.sendline("")                      # builtin
    child.expect("Time budget")
    child.sendline("30s")
    child.expect("hand-written backward")   # train has --manual-backward, so the flow offers it
    child.sendline("y")
    child.expect(r"Run it now\?")
    assert "gptscratch train --preset quick --max-time 30s --manual-backward" in child.before
    child.sendline("n")
    child.expect("Not run")
    assert finish(child) == 0


def test_ctrl_c_leaves_cleanly():
    child = spawn("-c", LAUNCHER)
    child.expect("What would you like to do")
    child.sendline("generate")
    child.expect("Checkpoint")
    child.sendintr()
    child.expect("cancelled")
    assert "Traceback" not in child.before
    assert finish(child) == 130


def test_without_a_terminal_prints_help_and_never_waits():
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", LAUNCHER], cwd=REPO, env=env(), stdin=subprocess.PIPE,
                            capture_output=True, text=True, timeout=60)  # stdin open but nothing is typed
    assert result.returncode == 2
    assert "Usage: gptscratch" in result.stdout and "What would you like" not in result.stdout
    assert time.perf_counter() - started < 30


def test_generic_flow_asks_required_arguments_then_extras(monkeypatch):
    toy = typer.Typer()

    @toy.command()
    def heads(checkpoint: str, layer: int = typer.Option(..., help="Block index."), json: bool = False):
        """Score heads."""

    @toy.command()
    def other():
        """Something else."""

    group = typer.main.get_command(toy)
    answers = iter(["heads", "runs/a", "2", "--json"])
    monkeypatch.setattr("builtins.input", lambda *a: next(answers))
    from rich.console import Console

    q = Questions(Console(file=open(os.devnull, "w"), force_terminal=False))
    assert generic_flow(["interpret"], group, q) == ["interpret", "heads", "runs/a", "--layer", "2", "--json"]


def test_the_command_shown_keeps_the_global_options(monkeypatch):
    from gptscratch.cli import main
    from gptscratch.cli.guided import global_args
    from gptscratch.cli.settings import SETTINGS

    monkeypatch.setenv("GPTSCRATCH_ACCEL", "1")       # --no-accel sets it to 0; restored after the test
    with pytest.raises(SystemExit):
        main(["--device", "cpu", "--no-accel", "--quiet", "info", "--json"])
    try:
        assert global_args() == ["--device", "cpu", "--quiet", "--no-accel"]
        SETTINGS.update(debug=True)
        assert global_args() == ["--debug"]
    finally:
        SETTINGS.update()


def test_real_entry_point_opens_the_menu_on_a_terminal():
    child = spawn("-m", "gptscratch")
    child.expect("What would you like to do")
    child.sendeof()
    assert finish(child) == 130
