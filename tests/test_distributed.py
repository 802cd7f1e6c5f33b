"""Data-parallel training under torchrun, on CPU with the gloo backend (2 processes).

The claim under test (gptscratch/training/distributed.py): N ranks × grad_accum/N micro-batches each
compute the same optimizer step as one process running all grad_accum micro-batches — the ranks read
disjoint slices of the same global stream of windows, and DDP averages their gradients. So after k steps the
weights of a 2-process run equal those of a 1-process run of the same command, up to float summation order
(the gradient mean is summed in a different order): tolerance atol 1e-5 on every tensor (observed ~1e-7).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch.training import TrainConfig, preset_config, train
from helpers import write_corpus

REPO = Path(__file__).resolve().parent.parent
FLAGS = ["--tokenizer", "byte", "--size", "tiny", "--context-length", "32", "--batch-size", "4",
         "--grad-accum", "2", "--eval-every", "3", "--eval-batches", "2", "--precision", "fp32",
         "--log-every", "1", "--sample-tokens", "8", "--seed", "5"]
ATOL = 1e-5


def torchrun(*args, nproc=2):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", "-m", "gptscratch", "train", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def single_config(data, **overrides):
    values = dict(data=data, tokenizer="byte", size="tiny", model={"context_length": 32}, batch_size=4,
                  grad_accum=2, eval_every=3, eval_batches=2, precision="fp32", log_every=1, sample_tokens=8,
                  seed=5, max_steps=6)
    values.update(overrides)
    return TrainConfig(**values)


def assert_same_weights(a_dir, b_dir, atol=ATOL):
    a, b = ckpt.load_checkpoint(a_dir).model.state_dict(), ckpt.load_checkpoint(b_dir).model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=atol, rtol=0, msg=name)


def test_two_gloo_processes_train_like_one(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    result = torchrun("--data", data, *FLAGS, "--max-steps", "6", "--out", str(tmp_path / "ddp"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # only rank 0 prints: exactly one JSON line
    assert summary["step"] == 6 and summary["tokens"] == 6 * 4 * 32 * 2
    assert "2 processes" in result.stderr and result.stderr.count("done (") == 1

    # Checkpoints are written once (rank 0): one latest/, one best/, no leftovers, each metric line once.
    run = tmp_path / "ddp"
    assert sorted(p.name for p in run.iterdir()) == ["best", "latest", "metrics.jsonl"]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert ckpt.load_checkpoint(run).training["step"] == 6

    train(single_config(data), run_dir=tmp_path / "single")
    assert_same_weights(run, tmp_path / "single")
    single = [json.loads(l) for l in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    ddp_val = [r["val_loss"] for r in records if "val_loss" in r]
    assert ddp_val == pytest.approx([r["val_loss"] for r in single if "val_loss" in r], abs=1e-4)


@pytest.mark.slow
def test_resume_under_torchrun_matches_single_process_resume(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    first = torchrun("--data", data, *FLAGS, "--max-steps", "3", "--out", str(tmp_path / "ddp"))
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = torchrun("--resume", str(tmp_path / "ddp"), "--max-steps", "6")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    train(single_config(data, max_steps=3), run_dir=tmp_path / "single")
    train(single_config(data, max_steps=6), resume_from=ckpt.resolve_checkpoint(tmp_path / "single"))
    assert ckpt.load_checkpoint(tmp_path / "ddp").training["step"] == 6
    assert_same_weights(tmp_path / "ddp", tmp_path / "single")


def test_a_preset_runs_unchanged_under_torchrun(tmp_path):
    """quick has --grad-accum 1, which two processes cannot share: it is rounded up to 2 and stderr says so."""
    result = torchrun("--preset", "quick", "--max-steps", "2", "--eval-every", "2", "--sample-tokens", "0",
                      "--out", str(tmp_path / "quick"), "--json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "--grad-accum rounded up to 2 so that 2 processes share each step evenly" in result.stderr
    summary = json.loads(result.stdout)
    quick = preset_config("quick")
    assert summary["step"] == 2 and summary["tokens"] == 2 * quick.batch_size * 64 * 2  # batch × context 64 × 2


def test_a_resume_keeps_its_step_size_under_torchrun(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    train(single_config(data, grad_accum=3, max_steps=1), run_dir=tmp_path / "odd")
    result = torchrun("--resume", str(tmp_path / "odd"), "--max-steps", "2")
    assert result.returncode != 0  # torchrun adds its own report (with a traceback) when a worker fails
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and all("--grad-accum 3, which does not divide among 2 processes" in line for line in errors)


def test_torchrun_worker_ends_without_interpreter_teardown(monkeypatch):
    """A finished torchrun worker leaves through os._exit with its exit code (after flushing), so gloo's
    threads are never destroyed during interpreter shutdown (which aborted a finished rank now and then)."""
    import torch.distributed  # noqa: F401 - the worker has it loaded
    from gptscratch import cli

    codes = []

    def fake_exit(code):
        codes.append(code)
        raise RuntimeError("exited")

    monkeypatch.setattr(cli.os, "_exit", fake_exit)
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(RuntimeError, match="exited"):
        cli.main(["--version"])
    with pytest.raises(RuntimeError, match="exited"):
        cli.main(["train", "--max-steps", "0"])
    assert codes == [0, 2]

    monkeypatch.setenv("WORLD_SIZE", "1")  # a single process exits normally
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert codes == [0, 2]
