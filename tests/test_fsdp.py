"""Sharded data-parallel training (FSDP2) under torchrun, on CPU with the gloo backend (2 processes).

The claim under test (gptscratch/training/fsdp.py): sharding changes where parameters, gradients and optimizer
state live, not what a step computes. Each rank runs grad_accum / 2 micro-batches of its own windows; the
reduce-scatter hands every rank the mean gradient of its slice (the same mean DDP's all-reduce gives), and the
AdamW update of a slice is element-wise. So a 2-process FSDP run matches one process running the same command
up to float summation order: the gradient mean is summed in another order (≈ 1 fp32 ulp, 1e-7 relative, per
step). AdamW divides by √v, so where a gradient entry is tiny that rounding is amplified into a small fraction
of lr (1e-3 here; observed ≤ 0.1 % of it over 6 steps). Tolerances, as for DDP (test_distributed.py):
weights, optimizer moments and logits atol 1e-5 (observed after 6 steps: weights 8.3e-7, moments 1.1e-8, logits
2.4e-7); logged losses abs 1e-4 (metrics.jsonl rounds to 1e-5; observed identical). FSDP against FSDP (a
resume against the uninterrupted run) repeats the same sums in the same order: atol 1e-6 there (observed 0 —
the gathered optimizer state is copied whole, never recomputed).

The shared run uses grad_accum 4, so each rank accumulates 2 micro-batches with the reduce-scatter skipped on
the first (set_requires_gradient_sync); a constant learning rate (no warmup, no decay), so a 3-step run
resumed to 6 steps follows the same schedule as the 6-step run; and eval_batches 3, which does not divide among
2 ranks: every rank then evaluates all 3 batches (each forward pass is collective under FSDP).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import write_corpus

from gptscratch import checkpoint as ckpt
from gptscratch.training import TrainConfig, train

REPO = Path(__file__).resolve().parent.parent
FLAGS = ["--tokenizer", "byte", "--size", "tiny", "--context-length", "32", "--batch-size", "4",
         "--grad-accum", "4", "--eval-every", "3", "--eval-batches", "3", "--precision", "fp32",
         "--log-every", "1", "--sample-tokens", "8", "--seed", "5", "--warmup", "0", "--min-lr-ratio", "1"]
ATOL = 1e-5


def torchrun(*args, home: Path, nproc=2):
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", GPTSCRATCH_HOME=str(home),
               GPTSCRATCH_MEASUREMENTS=str(home / "measurements.json"), GPTSCRATCH_DEVICE="cpu",
               HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           f"--nproc_per_node={nproc}", "-m", "gptscratch", "train", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)


def records(run: Path, key: str) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if key in r]


def weights(run: Path) -> dict:
    return ckpt.load_checkpoint(run).model.state_dict()


@pytest.fixture(scope="module")
def fsdp_run(tmp_path_factory):
    """(corpus folder, run folder) of one 6-step FSDP run on 2 gloo processes, shared by the tests below."""
    root = tmp_path_factory.mktemp("fsdp")
    data = write_corpus(root / "corpus")
    result = torchrun("--data", str(data), *FLAGS, "--max-steps", "6", "--fsdp", "--out", str(root / "run"),
                      "--json", home=root / "home")
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # only rank 0 prints: exactly one JSON line
    assert summary["step"] == 6 and summary["tokens"] == 6 * 4 * 32 * 4
    return data, root / "run"


def test_fsdp_trains_like_one_process_and_saves_an_ordinary_checkpoint(fsdp_run, tmp_path, run_cli):
    data, run = fsdp_run
    single = tmp_path / "single"
    train(TrainConfig(data=str(data), tokenizer="byte", size="tiny", model={"context_length": 32}, batch_size=4,
                      grad_accum=4, eval_every=3, eval_batches=3, precision="fp32", log_every=1, sample_tokens=8,
                      seed=5, warmup=0.0, min_lr_ratio=1.0, max_steps=6), run_dir=single)

    # The same loss curve, validation losses (all ranks ran all 3 batches) and samples (every rank generated).
    assert [r["step"] for r in records(run, "loss")] == [1, 2, 3, 4, 5, 6]
    assert [r["loss"] for r in records(run, "loss")] == pytest.approx([r["loss"] for r in records(single, "loss")],
                                                                      abs=1e-4)
    assert [r["val_loss"] for r in records(run, "val_loss")] == pytest.approx(
        [r["val_loss"] for r in records(single, "val_loss")], abs=1e-4)
    # Same weights, same prompt, same seed: the same 8 tokens (the cut at end-of-text happens after generating).
    assert [r["sample"] for r in records(run, "val_loss")] == [r["sample"] for r in records(single, "val_loss")]

    # Rank 0 wrote one ordinary run folder: whole tensors under the usual names (no shards, no DTensors) ...
    assert sorted(p.name for p in run.iterdir()) == ["best", "latest", "metrics.jsonl"]
    from safetensors.torch import load_file

    saved = load_file(run / "latest" / "model.safetensors")
    reference = load_file(single / "latest" / "model.safetensors")
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in reference.items()}
    # ... the optimizer state gathered whole and numbered as one process numbers it (what a resume reads) ...
    state = load_file(run / "latest" / "trainer_state.safetensors")
    single_state = load_file(single / "latest" / "trainer_state.safetensors")
    moments = sorted(k for k in single_state if k.startswith("optimizer."))
    assert moments and moments == sorted(k for k in state if k.startswith("optimizer."))
    for name in moments:
        torch.testing.assert_close(state[name], single_state[name], atol=ATOL, rtol=0, msg=name)

    # ... which loads in a single process: the weights one process trained, and the logits they give.
    loaded, expected = ckpt.load_checkpoint(run), ckpt.load_checkpoint(single)
    assert loaded.training["step"] == 6
    for name, tensor in expected.model.state_dict().items():
        torch.testing.assert_close(loaded.model.state_dict()[name], tensor, atol=ATOL, rtol=0, msg=name)
    assert loaded.model.lm_head.weight is loaded.model.tok_embed.weight  # tied again on load
    idx = torch.tensor([list(b"The quick brown fox")])
    with torch.no_grad():
        logits, _ = loaded.model(idx)
        expected_logits, _ = expected.model(idx)
    assert torch.isfinite(logits).all()
    torch.testing.assert_close(logits, expected_logits, atol=ATOL, rtol=0)

    generated = run_cli("generate", "--checkpoint", str(run), "--prompt", "The ", "--max-tokens", "5",
                        "--temperature", "0")
    assert generated.returncode == 0, generated.stderr[-2000:]
    assert "5 tokens in" in generated.stderr


@pytest.mark.slow
def test_fsdp_resume_continues_the_same_curve(fsdp_run, tmp_path):
    """3 steps, then --resume to 6, both under FSDP, equals the 6-step FSDP run: the weights come back from the
    ordinary checkpoint and the optimizer moments are scattered into the shards (fsdp.resume_optimizer_state);
    without the moments step 4 would differ at once (Adam's first step after a reset is lr-sized per entry)."""
    data, full = fsdp_run
    half = tmp_path / "half"
    first = torchrun("--data", str(data), *FLAGS, "--max-steps", "3", "--fsdp", "--out", str(half), home=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    resumed = torchrun("--resume", str(half), "--max-steps", "6", home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    assert [r["step"] for r in records(half, "loss")] == [1, 2, 3, 4, 5, 6]  # each step once
    for key in ("loss", "grad_norm"):
        assert [r[key] for r in records(half, "loss")] == pytest.approx([r[key] for r in records(full, "loss")],
                                                                       abs=1e-6)
    assert [r["val_loss"] for r in records(half, "val_loss")] == pytest.approx(
        [r["val_loss"] for r in records(full, "val_loss")], abs=1e-6)
    assert ckpt.load_checkpoint(half).training["step"] == 6
    a, b = weights(half), weights(full)
    for name in b:
        torch.testing.assert_close(a[name], b[name], atol=1e-6, rtol=0, msg=name)


def test_fsdp_in_one_process_is_a_usage_error(tmp_path, run_cli):
    data = write_corpus(tmp_path / "corpus")
    result = run_cli("train", "--data", str(data), *FLAGS, "--max-steps", "1", "--fsdp", "--out",
                     str(tmp_path / "run"))
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: --fsdp shards") and "launch it with torchrun" in errors[0]
    assert not (tmp_path / "run" / "latest").exists()


def test_fsdp_refuses_muon_under_torchrun(tmp_path):
    data = write_corpus(tmp_path / "corpus")
    result = torchrun("--data", str(data), *FLAGS, "--max-steps", "1", "--fsdp", "--optimizer", "muon",
                      "--out", str(tmp_path / "run"), home=tmp_path)
    assert result.returncode != 0  # torchrun adds its own report when a worker fails
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and all("--optimizer adamw only" in line and "Newton–Schulz" in line for line in errors)


def test_fsdp_refuses_manual_backward():
    """Under torchrun the trainer refuses --manual-backward before the model is wrapped (it bypasses DDP too);
    FSDP's own check names the reason should that order ever change."""
    from gptscratch.errors import UsageError
    from gptscratch.training.distributed import DistContext
    from gptscratch.training.fsdp import check_supported

    config = TrainConfig(data="builtin", fsdp=True, manual_backward=True, max_steps=1)
    with pytest.raises(UsageError, match="--manual-backward"):
        check_supported(config, DistContext(rank=0, world_size=2))
    check_supported(config.replace(manual_backward=False), DistContext(rank=0, world_size=2))  # the rest is fine
