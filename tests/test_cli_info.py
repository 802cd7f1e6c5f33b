"""`gptscratch info` reports what gptscratch.accel decided on this machine: the switch (--no-accel,
GPTSCRATCH_ACCEL), the measurements file, this machine's stored answers (summarised in the table, raw with
--json), the processor, and `--remeasure` forgets them. Each test writes its own measurements file and points
GPTSCRATCH_MEASUREMENTS at it."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptscratch.accel.measure import describe, stored_here
from gptscratch.model.config import ModelConfig

REPO = Path(__file__).resolve().parent.parent
SHAPE = {k: v for k, v in dataclasses.asdict(ModelConfig(vocab_size=50304, context_length=1024, n_head=12,
                                                         d_model=768, positional="rope")).items()
         if k != "n_layer"}
ANSWERS = {
    f"decode dtype {json.dumps(SHAPE, sort_keys=True)}": {"best": "fp32", "seconds": {"bf16": 0.17, "fp32": 0.07}},
    "decode product float32 d64 L2 ff256 V320": {"best": "mv", "seconds_per_token": {"linear": 4.4e-5, "mv": 3.5e-5}},
    "bf16 attention B16 nh2 T64 hs32": {"best": "pytorch", "seconds": {"fp32-backward": 0.5, "pytorch": 0.0081}},
}
ROWS = [("decode dtype d768 nh12 T1024 V50304 positional=rope", "fp32 (bf16 0.17 s, fp32 70.0 ms)"),
        ("decode product float32 d64 L2 ff256 V320", "mv (linear 44 µs, mv 35 µs per token)"),
        ("bf16 attention B16 nh2 T64 hs32", "pytorch (fp32-backward 0.50 s, pytorch 8.1 ms)")]


@pytest.fixture
def measurements(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "measured" / "measurements.json"
    monkeypatch.setenv("GPTSCRATCH_MEASUREMENTS", str(path))
    return path


def test_answers_are_summarised_readably():
    assert describe(ANSWERS) == ROWS
    assert describe({"a question {not json": {"best": "x"}, "odd": [1, 2]}) == [("a question {not json", "x"),
                                                                                ("odd", "[1, 2]")]


def test_info_shows_only_this_machines_answers(measurements, capsys, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setenv("COLUMNS", "250")   # rich wraps a table to the terminal's width: keep each value on a line
    from gptscratch.cli import main
    from gptscratch.device import cpu_model, machine_key

    here = machine_key("cpu")
    measurements.parent.mkdir()
    measurements.write_text(json.dumps({here: ANSWERS, f"another cpu | torch {torch.__version__}": {
        "train precision batch 8 elsewhere": {"best": "bf16", "seconds": {"bf16": 1.0, "fp32": 2.0}}}}))
    assert stored_here("cpu") == (here, ANSWERS)
    with pytest.raises(SystemExit) as done:
        main(["info", "--json"])
    assert done.value.code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["cpu"] == cpu_model()
    assert report["accel"]["measurements_file"] == str(measurements)
    assert (report["accel"]["machine"], report["accel"]["measurements"]) == (here, ANSWERS)   # the raw answers

    with pytest.raises(SystemExit):
        main(["info"])
    table = capsys.readouterr().out
    for question, answer in ROWS:
        assert question in table and answer in table
    assert "elsewhere" not in table and here in table and cpu_model() in table


def test_info_without_measurements_does_not_import_torch(measurements):
    code = ("import json, sys\nfrom gptscratch.cli import main\n"
            "try:\n    main(['info', '--json'])\nexcept SystemExit:\n    pass\n"
            "sys.stderr.write(json.dumps('torch' in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert json.loads(result.stderr.strip().splitlines()[-1]) is False, result.stderr
    accel = json.loads(result.stdout)["accel"]
    assert (accel["machine"], accel["measurements"]) == (None, {})


def test_remeasure_forgets_the_answers_and_says_so(measurements, run_cli):
    measurements.parent.mkdir()
    measurements.write_text(json.dumps({"some machine | torch 0": ANSWERS}))
    result = run_cli("info", "--remeasure", "--json")
    assert result.returncode == 0, result.stderr
    assert not measurements.exists()
    assert f"forgot the measurements in {measurements}" in result.stderr
    assert "measured again the next time a command needs it" in result.stderr
    assert json.loads(result.stdout)["accel"]["measurements"] == {}
    again = run_cli("info", "--remeasure")
    assert again.returncode == 0 and "nothing to forget" in again.stderr and "nothing yet" in again.stdout


@pytest.mark.parametrize("args, env, enabled, shown", [
    ((), None, True, "on (turn off: --no-accel or GPTSCRATCH_ACCEL=0)"),
    (("--no-accel",), None, False, "off (--no-accel)"),
    ((), "off", False, "off (GPTSCRATCH_ACCEL=off)"),
])
def test_the_accel_switch_is_reported(measurements, run_cli, args, env, enabled, shown):
    report = json.loads(run_cli(*args, "info", "--json", env={"GPTSCRATCH_ACCEL": env}).stdout)
    assert report["accel"]["enabled"] is enabled
    assert report["accel"]["no_accel_flag"] is bool(args)
    table = run_cli(*args, "info", env={"GPTSCRATCH_ACCEL": env}).stdout
    assert shown in table and str(measurements) in table
