"""CLI root and foundations: --help/--version/info, error mapping, start-up imports,
atomic writes, cache paths and device resolution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gptscratch import __version__, atomic, device, paths
from gptscratch.errors import DataError, GptScratchError, UsageError

HEAVY_MODULES = ("torch", "numpy", "datasets", "tiktoken", "transformers", "fastapi", "uvicorn", "openai", "lm_eval",
                 "transformer_lens", "gguf", "llama_cpp")


# --- CLI through a real subprocess (what users run) -------------------------------------


def test_help_lists_commands_and_global_options(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0, result.stderr
    for expected in ("info", "--device", "--quiet", "--debug", "--version"):
        assert expected in result.stdout


def test_version_flag(run_cli):
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"gptscratch {__version__}"


def test_info_json_reports_versions_device_and_paths(run_cli, gptscratch_home):
    result = run_cli("info", "--json")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1  # one line of JSON
    report = json.loads(result.stdout)
    assert report["versions"]["gptscratch"] == __version__
    assert report["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"torch", "tiktoken", "datasets"} <= set(report["versions"])
    assert report["device"] == "cpu"  # conftest sets GPTSCRATCH_DEVICE=cpu
    assert report["paths"]["cache"] == str(gptscratch_home.resolve())
    assert report["paths"]["runs"] == str(gptscratch_home.resolve() / "runs")


def test_info_table_mentions_paths(run_cli, gptscratch_home):
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    assert "torch" in result.stdout and str(gptscratch_home.resolve() / "data") in result.stdout


def test_home_override_is_honoured(run_cli, tmp_path):
    elsewhere = tmp_path / "other home"
    report = json.loads(run_cli("info", "--json", env={"GPTSCRATCH_HOME": str(elsewhere)}).stdout)
    assert report["paths"]["data"] == str(elsewhere.resolve() / "data")
    assert not elsewhere.exists()  # info only reports paths, it creates nothing


def test_unknown_command_exits_2(run_cli):
    result = run_cli("no-such-command")
    assert result.returncode == 2
    assert "no-such-command" in result.stderr


def _assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_unavailable_cuda_is_a_one_line_usage_error(run_cli):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    _assert_one_line_error(run_cli("--device", "cuda", "info"), "cuda", "--device cpu")


def test_nonexistent_cuda_index_is_a_one_line_usage_error(run_cli):
    _assert_one_line_error(run_cli("--device", "cuda:99", "info"), "cuda:99")


def test_misspelt_device_is_rejected_before_any_work(run_cli):
    _assert_one_line_error(run_cli("--device", "gpu", "info"), "gpu", "auto, cpu")


def test_debug_shows_the_traceback(run_cli):
    result = run_cli("--debug", "--device", "gpu", "info")
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "error: unknown device" in result.stderr


def test_cli_startup_imports_no_heavy_modules():
    """`gptscratch --help` must stay fast: none of the heavy libraries may be imported."""
    code = (
        "import sys, json\n"
        "from gptscratch.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit as exit:\n    code = exit.code\n"
        f"heavy = [m for m in {HEAVY_MODULES!r} if m in sys.modules]\n"
        "sys.stderr.write(json.dumps({'code': code, 'heavy': heavy}))\n"
    )
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    outcome = json.loads(result.stderr.strip().splitlines()[-1])
    assert outcome == {"code": 0, "heavy": []}
    assert "info" in result.stdout


# --- error mapping in-process -------------------------------------------------------------


def test_runtime_errors_exit_1_with_one_line(monkeypatch, capsys):
    from gptscratch.cli import info as info_module
    from gptscratch.cli import main

    def broken():
        raise DataError("shard train_000.bin is truncated; rerun `gptscratch data prepare`")

    monkeypatch.setattr(info_module, "collect_info", broken)
    with pytest.raises(SystemExit) as exit_info:
        main(["info"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err == "error: shard train_000.bin is truncated; rerun `gptscratch data prepare`\n"


def test_unexpected_exceptions_are_one_line_without_debug(monkeypatch, capsys):
    from gptscratch.cli import info as info_module
    from gptscratch.cli import main

    monkeypatch.setattr(info_module, "collect_info", lambda: 1 / 0)
    with pytest.raises(SystemExit) as exit_info:
        main(["info"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ZeroDivisionError" in err and "--debug" in err


def test_error_exit_codes():
    assert GptScratchError("x").exit_code == 1
    assert DataError("x").exit_code == 1
    assert UsageError("x").exit_code == 2


# --- render -------------------------------------------------------------------------------


def test_print_json_is_one_strict_line(capsys):
    from gptscratch.cli.render import print_json

    print_json({"loss": float("nan"), "path": Path("a/b"), "steps": (1, 2), "text": "é"})
    out = capsys.readouterr().out
    assert out.count("\n") == 1
    expected = {"loss": None, "path": str(Path("a/b")), "steps": [1, 2], "text": "é"}
    assert json.loads(out) == expected


def test_plain_progress_lines_and_quiet(capsys):
    from gptscratch.cli.render import log, progress_callback
    from gptscratch.cli.settings import SETTINGS

    with progress_callback("train", interval=3600) as progress:
        progress({"total": 10, "completed": 0, "unit": "steps"})
        progress({"completed": 5, "loss": 2.5})  # within the interval: not printed
        progress({"message": "saved checkpoint"})
        progress({"completed": 10, "loss": 1.25})  # finished: printed once
        progress({"completed": 10, "loss": 1.0})
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["train: 0/10 steps", "saved checkpoint", "train: 10/10 steps loss=1.25"]

    SETTINGS.update(quiet=True)
    try:
        log("hidden")
        with progress_callback("train") as progress:
            progress({"total": 1, "completed": 1})
    finally:
        SETTINGS.update()
    assert capsys.readouterr().err == ""


# --- atomic writes --------------------------------------------------------------------------


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_writes_create_parents_and_replace(tmp_path):
    target = tmp_path / "deep" / "dir" / "file.json"
    atomic.atomic_write_json(target, {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    atomic.atomic_write_text(target, "new")
    assert target.read_text() == "new"
    atomic.atomic_write_bytes(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _leftovers(target.parent) == []


def test_atomic_path_failure_keeps_original_and_removes_temp(tmp_path):
    target = tmp_path / "model.safetensors"
    target.write_bytes(b"original")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            assert tmp.parent == target.parent and tmp != target
            tmp.write_bytes(b"half-writ")
            raise RuntimeError("crash midway")
    assert target.read_bytes() == b"original"
    assert _leftovers(tmp_path) == []


def test_failing_write_midway_keeps_original(tmp_path, monkeypatch):
    target = tmp_path / "state.json"
    target.write_text("old")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", disk_full)
    with pytest.raises(OSError):
        atomic.atomic_write_text(target, "new contents")
    assert target.read_text() == "old"
    assert _leftovers(tmp_path) == []


def test_unserialisable_json_touches_nothing(tmp_path):
    target = tmp_path / "config.json"
    target.write_text("{}")
    with pytest.raises(TypeError):
        atomic.atomic_write_json(target, {"bad": object()})
    assert target.read_text() == "{}" and _leftovers(tmp_path) == []


# --- paths -----------------------------------------------------------------------------------


def test_paths_follow_home_and_create_nothing(gptscratch_home):
    assert paths.cache_root() == gptscratch_home.resolve()
    assert paths.data_root() == gptscratch_home.resolve() / "data"
    assert paths.runs_root() == gptscratch_home.resolve() / "runs"
    assert paths.pretrained_root() == gptscratch_home.resolve() / "pretrained"
    assert not gptscratch_home.exists()


def test_paths_default_to_platform_cache(monkeypatch):
    from platformdirs import user_cache_dir

    monkeypatch.delenv(paths.ENV_HOME)
    assert paths.cache_root() == Path(user_cache_dir("gptscratch", appauthor=False))
    monkeypatch.setenv(paths.ENV_HOME, "")  # empty means unset, not the current directory
    assert paths.cache_root() == Path(user_cache_dir("gptscratch", appauthor=False))


# --- device resolution -------------------------------------------------------------------------


def test_cpu_and_env_resolution(monkeypatch):
    assert device.resolve_device("cpu") == "cpu"
    assert device.resolve_device(None) == "cpu"  # GPTSCRATCH_DEVICE=cpu from conftest
    assert device.resolve_device("auto") == "cpu"
    with pytest.raises(UsageError, match="unknown device"):
        device.resolve_device("tpu")
    with pytest.raises(UsageError):
        device.check_device_name("cuda:x")


def _fake_accelerators(monkeypatch, *, cuda: bool, mps: bool, count: int = 1):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count if cuda else 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    monkeypatch.delenv(device.ENV_DEVICE, raising=False)


def test_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    _fake_accelerators(monkeypatch, cuda=True, mps=True)
    assert device.resolve_device("auto") == "cuda"
    _fake_accelerators(monkeypatch, cuda=False, mps=True)
    assert device.resolve_device(None) == "mps"
    _fake_accelerators(monkeypatch, cuda=False, mps=False)
    assert device.resolve_device(None) == "cpu"


def test_unavailable_accelerators_raise_usage_errors_with_fix(monkeypatch):
    _fake_accelerators(monkeypatch, cuda=False, mps=False)
    for name in ("cuda", "cuda:0", "mps"):
        with pytest.raises(UsageError, match="--device cpu"):
            device.resolve_device(name)
    _fake_accelerators(monkeypatch, cuda=True, mps=False, count=2)
    assert device.resolve_device("cuda:1") == "cuda:1"
    with pytest.raises(UsageError, match="only 2 CUDA"):
        device.resolve_device("cuda:2")


def test_tables_into_a_pipe_keep_long_cells_on_one_line(capsys):
    """Into a pipe a table gets the width it needs: a long run name or path is never folded across lines."""
    from gptscratch.cli import render

    long_path = "/tmp/" + "/".join(["a-rather-long-folder-name"] * 8)
    render.show(render.table("runs", ["name", "path"], [["20261122-162052-tiny", long_path]]))
    out = capsys.readouterr().out
    assert any(long_path in line and "20261122-162052-tiny" in line for line in out.splitlines())
