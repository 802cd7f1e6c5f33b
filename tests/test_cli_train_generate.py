"""The first user path through the real entry point: train a tiny run, generate from it, bad inputs."""

import json
import signal
import subprocess
import sys
import time

import pytest

from helpers import write_corpus

TINY = ["--size", "tiny", "--context-length", "32", "--batch-size", "4", "--eval-every", "5",
        "--eval-batches", "2", "--precision", "fp32"]


@pytest.fixture
def trained_run(tmp_path, run_cli):
    corpus = write_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    result = run_cli("train", "--data", str(corpus), "--tokenizer", "byte", *TINY, "--max-steps", "10",
                     "--out", str(run), "--json")
    assert result.returncode == 0, result.stderr
    return run, result


def test_train_then_generate(trained_run, run_cli):
    run, result = trained_run
    summary = json.loads(result.stdout)
    assert summary["step"] == 10 and summary["val_loss"] is not None
    assert "device: cpu" in result.stderr
    assert (run / "latest" / "model.safetensors").is_file() and (run / "metrics.jsonl").is_file()

    first = run_cli("generate", "--checkpoint", str(run), "--prompt", "The quick", "--max-tokens", "30",
                    "--seed", "7")
    second = run_cli("generate", "--checkpoint", str(run), "--prompt", "The quick", "--max-tokens", "30",
                     "--seed", "7")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) > 0
    assert "device: cpu" in first.stderr

    piped = run_cli("generate", "--checkpoint", str(run), "--max-tokens", "5", "--json", input="The lazy")
    record = json.loads(piped.stdout)
    assert record["prompt"] == "The lazy" and record["completion_tokens"] <= 5

    # Greedy decoding (--temperature 0) through the CLI. (No --checkpoint: test_default_checkpoint_is_the_latest_run.)
    greedy = run_cli("generate", "--checkpoint", str(run), "--prompt", "Pack", "--temperature", "0",
                     "--max-tokens", "20", "--json")
    assert json.loads(greedy.stdout)["completion_tokens"] >= 1


def test_default_checkpoint_is_the_latest_run(tmp_path, run_cli, gptscratch_home):
    corpus = write_corpus(tmp_path / "corpus")
    assert run_cli("train", "--data", str(corpus), *TINY, "--max-steps", "2").returncode == 0
    result = run_cli("generate", "--prompt", "x", "--max-tokens", "3")
    assert result.returncode == 0, result.stderr
    assert str(gptscratch_home / "runs") in result.stderr


def test_resume_through_the_cli(trained_run, run_cli):
    run, _ = trained_run
    result = run_cli("train", "--resume", str(run), "--max-steps", "12", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["step"] == 12


@pytest.mark.parametrize("args, code, message", [
    (["train", "--data", "/no/such/file.txt", "--max-steps", "1"], 2, "/no/such/file.txt"),
    (["train", "--preset", "quick", "--max-steps", "0"], 2, "--max-steps"),
    (["train", "--preset", "nope"], 2, "unknown preset"),
    (["train", "--data", "builtin"], 2, "budget"),
    (["train", "--preset", "quick", "--max-time", "soon"], 2, "duration"),
    (["generate", "--checkpoint", "/no/such/run", "--prompt", "x"], 2, "no checkpoint"),
    (["generate", "--prompt", "x"], 2, "train one"),
    (["generate", "--prompt", "x", "--temperature", "-1"], 2, "temperature"),
    (["generate", "--prompt", "x", "--preset", "wild"], 2, "unknown preset"),
    (["--device", "cuda:99", "generate", "--prompt", "x"], 2, "cuda:99"),  # no such GPU, with or without CUDA
])
def test_bad_inputs_exit_with_one_line(run_cli, args, code, message):
    result = run_cli(*args)
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr


def test_binary_and_empty_data_are_refused(tmp_path, run_cli, gptscratch_home):
    (tmp_path / "blob.txt").write_bytes(b"\x00\x01\x02binary")
    (tmp_path / "empty.txt").write_text("")
    datasets = gptscratch_home / "data"
    datasets.mkdir(parents=True)          # where `train --data FILE` prepares its dataset, as after earlier runs
    for name in ("blob.txt", "empty.txt"):
        result = run_cli("train", "--data", str(tmp_path / name), "--max-steps", "1")
        assert result.returncode == 2 and "Traceback" not in result.stderr
    assert sorted(datasets.iterdir()) == []          # nothing half-prepared is left behind


def test_corrupt_checkpoint_is_a_runtime_error(trained_run, run_cli):
    run, _ = trained_run
    (run / "latest" / "model.safetensors").write_bytes(b"not safetensors")
    result = run_cli("generate", "--checkpoint", str(run / "latest"), "--prompt", "x")
    assert result.returncode == 1 and "damaged" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sigint_saves_and_exits_130(tmp_path, run_cli):
    corpus = write_corpus(tmp_path / "corpus")
    import os
    env = dict(os.environ, PYTHONPATH=str(__import__("pathlib").Path(__file__).parent.parent))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "gptscratch", "train", "--data", str(corpus), *TINY,
                             "--max-steps", "100000", "--save-every", "1000000", "--out", str(run)],
                            env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (run / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()  # never leave a 100,000-step run behind if the test fails
    assert proc.returncode == 130, stderr
    assert "--resume" in stderr
    generated = run_cli("generate", "--checkpoint", str(run), "--prompt", "x", "--max-tokens", "3")
    assert generated.returncode == 0
