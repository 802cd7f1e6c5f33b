"""Runs people can trust: kill -9, full disks, unwritable folders, budgets, samples, --debug, --init-from."""

import errno
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch.errors import TrainingError, UsageError
from gptscratch.training import train
from gptscratch.training.metrics import read as read_metrics
from helpers import tiny_train_config, write_corpus

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parent.parent
TINY = ["--tokenizer", "byte", "--size", "tiny", "--context-length", "32", "--batch-size", "4",
        "--precision", "fp32", "--eval-every", "100000", "--sample-tokens", "0", "--log-every", "1"]


def complete_checkpoints(run: Path) -> list[Path]:
    return [p for p in run.iterdir() if p.is_dir() and (p / "config.json").is_file()]


@pytest.mark.slow  # ~15 s quiet, ~30 s on the shared machine: four real training processes
def test_kill_9_at_several_moments_leaves_the_newest_checkpoint_resumable(tmp_path):
    """SIGKILL a real training process at different moments (saving every step, so some kills land inside
    a save); each time every folder that looks complete must load, and the run must resume from it."""
    corpus = write_corpus(tmp_path / "corpus")
    run = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    base = [sys.executable, "-m", "gptscratch", "train"]
    steps_seen = [0]
    for attempt, delay in enumerate((0.2, 0.7, 1.3)):
        args = (["--data", str(corpus), *TINY, "--max-steps", "100000", "--save-every", "1", "--out", str(run)]
                if attempt == 0 else ["--resume", str(run), "--max-steps", "100000"])
        proc = subprocess.Popen(base + args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            logged = [r["step"] for r in read_metrics(run) if "loss" in r]
            if logged and logged[-1] >= steps_seen[-1] + 2:  # step last+1 was logged, trained on, and saved
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        for folder in complete_checkpoints(run):  # nothing that looks complete is truncated
            ckpt.load_checkpoint(folder)
        step = ckpt.load_checkpoint(run).training["step"]
        assert step >= steps_seen[-1]
        steps_seen.append(step)
    final = subprocess.run(base + ["--resume", str(run), "--max-steps", str(steps_seen[-1] + 3), "--json"],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr[-2000:]
    assert json.loads(final.stdout)["step"] == steps_seen[-1] + 3
    assert not list(run.glob(".*tmp-*")) and not list(run.glob("*.old"))
    logged = [r["step"] for r in read_metrics(run) if "loss" in r]
    assert logged == sorted(set(logged)) and logged[-1] == steps_seen[-1] + 3  # each step once, in order


def test_full_disk_is_refused_before_training(tmp_path, monkeypatch):
    import shutil

    from gptscratch.training import preflight

    data = str(write_corpus(tmp_path / "corpus"))
    monkeypatch.setattr(preflight.shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(UsageError, match="not enough disk space"):
        train(tiny_train_config(data), run_dir=tmp_path / "run")
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_unwritable_run_folder_is_a_usage_error(tmp_path, run_cli):
    corpus = write_corpus(tmp_path / "corpus")
    (tmp_path / "a-file").write_text("in the way")
    result = run_cli("train", "--data", str(corpus), *TINY, "--max-steps", "2", "--out", str(tmp_path / "a-file" / "run"))
    assert result.returncode == 2 and "cannot write to the run folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_disk_full_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    """A save that fails half-way (ENOSPC while writing the weights) never replaces the last good checkpoint,
    leaves no half-written folder behind, and stops the run with the fix."""
    import safetensors.torch

    data = str(write_corpus(tmp_path / "corpus"))
    real_save, calls = safetensors.torch.save_file, {"n": 0}

    def failing_save(tensors, filename, metadata=None):
        calls["n"] += 1
        if calls["n"] > 2:  # first checkpoint (weights + trainer state) succeeds, the next runs out of space
            Path(filename).write_bytes(b"\x00" * 100)  # a truncated file...
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(tensors, filename, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", failing_save)
    with pytest.raises(TrainingError, match="previous checkpoint is intact"):
        train(tiny_train_config(data, max_steps=10, eval_every=100, save_every=2), run_dir=tmp_path / "run")
    assert ckpt.load_checkpoint(tmp_path / "run").training["step"] == 2
    assert [p.name for p in complete_checkpoints(tmp_path / "run")] == ["latest"]
    assert not list((tmp_path / "run").glob(".*tmp-*"))


def test_half_written_metrics_line_does_not_break_resume(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=4, eval_every=2)
    train(config, run_dir=tmp_path / "run")
    with open(tmp_path / "run" / "metrics.jsonl", "a") as handle:
        handle.write('{"step": 5, "lo')  # what a kill -9 in the middle of a write leaves
    result = train(config.replace(max_steps=6), resume_from=ckpt.resolve_checkpoint(tmp_path / "run"))
    assert result.step == 6
    assert [r["step"] for r in read_metrics(tmp_path / "run") if "loss" in r] == [1, 2, 3, 4, 5, 6]


def test_token_budget_evaluation_sample_and_grad_norm(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=None, max_tokens=1000, eval_every=4, sample_tokens=12)
    events = []
    result = train(config, run_dir=tmp_path / "run", progress=events.append)
    assert result.step == math.ceil(1000 / (4 * 32)) and result.stop_reason == "max_tokens"
    evals = [e for e in events if e.get("event") == "eval"]
    assert evals and all(isinstance(e["sample"], str) for e in evals)
    assert evals[0]["val_perplexity"] == pytest.approx(math.exp(evals[0]["val_loss"]), rel=1e-3)
    steps = [r for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert all(r["grad_norm"] > 0 for r in steps)


def test_debug_records_gradient_and_activation_statistics(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    train(tiny_train_config(data, max_steps=3, debug=True), run_dir=tmp_path / "run")
    debug = [r["debug"] for r in read_metrics(tmp_path / "run") if "debug" in r]
    assert len(debug) == 3
    assert set(debug[0]["activations"]) == {"blocks.0", "blocks.1"}
    assert debug[0]["grad_norm"] > 0 and debug[0]["grad_max_at"] and debug[0]["grad_nonfinite"] == []
    assert not torch.is_anomaly_enabled()  # switched off again after the run


def test_adamw_is_fused_on_cpu(tiny_model):
    from gptscratch.training.optimizer import build_optimizer

    optimizer = build_optimizer(tiny_model().train(), 1e-3, 0.1, (0.9, 0.95), "cpu")
    assert optimizer.defaults["fused"] is True
    decay, no_decay = optimizer.param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])


def test_init_from_starts_from_the_checkpoint_weights(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    train(tiny_train_config(data, max_steps=4), run_dir=tmp_path / "base")
    base = ckpt.load_checkpoint(tmp_path / "base").model.state_dict()
    # lr so small that one step barely moves: the new run's weights are the base run's.
    config = tiny_train_config(data, max_steps=1, lr=1e-12, init_from=str(tmp_path / "base"), size="small")
    train(config, run_dir=tmp_path / "tuned")
    tuned = ckpt.load_checkpoint(tmp_path / "tuned")
    assert tuned.model.config.n_layer == 2  # the checkpoint's shape, not --size small
    for name, tensor in tuned.model.state_dict().items():
        torch.testing.assert_close(tensor, base[name], atol=1e-6, rtol=0)


def test_init_from_with_another_tokenizer_is_a_vocab_mismatch(tmp_path, run_cli):
    corpus = write_corpus(tmp_path / "corpus")
    assert run_cli("train", "--data", str(corpus), *TINY, "--max-steps", "2", "--out", str(tmp_path / "base")).returncode == 0
    result = run_cli("train", "--data", str(corpus), "--tokenizer", "char", "--max-steps", "2",
                     "--init-from", str(tmp_path / "base"), "--out", str(tmp_path / "tuned"))
    assert result.returncode == 2, result.stderr
    assert "vocab mismatch" in result.stderr and "--tokenizer byte" in result.stderr
