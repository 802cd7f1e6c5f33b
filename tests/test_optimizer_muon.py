"""`--optimizer muon`: the Newton–Schulz orthogonalization, the update against torch.optim.Muon, which parameters
go to Muon and which stay on AdamW, the schedule over both, learning, exact resume, --manual-backward, torchrun,
and bad values."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch.errors import UsageError
from gptscratch.training import TrainConfig, TrainingInterrupted, plan_resume, train
from gptscratch.training.muon import Muon, newton_schulz
from gptscratch.training.optimizer import (MuonWithAdamW, build_optimizer, load_optimizer_state,
                                           optimizer_state_tensors, split_parameters)
from helpers import tiny_train_config, write_corpus

torch.set_num_threads(1)

# After 5 quintic iterations every singular value that started above 0.0015·‖G‖_F lies in this band (muon.py).
BAND = (0.67, 1.21)


def low_rank(rows, cols, rank):
    return torch.randn(rows, rank) @ torch.randn(rank, cols)


MATRICES = {  # name -> (matrix, its rank)
    "random": (lambda: torch.randn(64, 64), 64),
    "tall": (lambda: torch.randn(256, 64), 64),
    "wide": (lambda: torch.randn(48, 192), 48),
    "ill-conditioned": (lambda: torch.randn(96, 32) @ torch.diag(torch.logspace(0, -2, 32)), 32),
    "low-rank": (lambda: low_rank(96, 64, 4), 4),
}


@pytest.mark.parametrize("name", MATRICES)
def test_newton_schulz_is_close_to_orthogonal_with_the_same_directions(name):
    torch.manual_seed(0)
    make, rank = MATRICES[name]
    g = make()
    u, s, vh = torch.linalg.svd(g, full_matrices=False)
    o = newton_schulz(g)
    assert o.shape == g.shape and o.dtype == torch.float32
    # In G's own singular basis the result is diagonal: the directions are G's, only the sizes changed.
    d = u.T @ o @ vh.T
    off_diagonal = d - torch.diag(torch.diagonal(d))
    assert off_diagonal.norm() < 1e-3 * d.norm()
    new = torch.diagonal(d)
    lifted = s / g.norm() > 0.0015  # the singular values five iterations can bring up (all but a square's tail)
    assert lifted[:rank].float().mean() > 0.85
    assert new[lifted].min() > BAND[0] and new[lifted].max() < BAND[1], (new.min(), new.max())
    # A singular value of 0 stays 0: orthogonalizing invents no direction (low-rank: 4 of 64).
    assert torch.all(new[rank:].abs() < 1e-3)
    # Near-orthogonal: the rows (wide) or columns (tall) are near-orthonormal wherever G had full rank.
    if rank == min(g.shape) and lifted.all():
        gram = o @ o.T if g.shape[0] <= g.shape[1] else o.T @ o
        eigenvalues = torch.linalg.eigvalsh(gram)
        assert eigenvalues.min() > BAND[0] ** 2 and eigenvalues.max() < BAND[1] ** 2


def run_both(shape, ns_dtype, steps=3):
    """The same gradients through our Muon and torch.optim.Muon (lr 0.02, decay 0.1, Nesterov momentum 0.95)."""
    torch.manual_seed(1)
    start = torch.randn(*shape) * 0.02
    ours, theirs = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    ours_opt = Muon([ours], lr=0.02, weight_decay=0.1, ns_dtype=ns_dtype)
    ref_opt = torch.optim.Muon([theirs], lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=True)
    for _ in range(steps):
        gradient = torch.randn(*shape)
        ours.grad, theirs.grad = gradient.clone(), gradient.clone()
        ours_opt.step()
        ref_opt.step()
    return start, ours, theirs, ours_opt.state[ours], ref_opt.state[theirs]


@pytest.mark.parametrize("shape", [(96, 32), (32, 128), (48, 48)])
def test_update_equals_torch_muon(shape):
    # In bf16 (what torch.optim.Muon always uses) the arithmetic is the same: bit for bit.
    _, ours, theirs, our_state, their_state = run_both(shape, torch.bfloat16)
    assert torch.equal(ours, theirs)
    assert torch.equal(our_state["momentum_buffer"], their_state["momentum_buffer"])
    # In fp32 (our choice off CUDA) the step differs from the reference only by bf16's rounding: a few percent.
    start, ours, theirs, _, _ = run_both(shape, torch.float32)
    ours_step, their_step = ours.detach() - start, theirs.detach() - start
    assert (ours_step - their_step).norm() < 0.05 * their_step.norm()
    assert not torch.equal(ours, theirs)  # fp32 really ran: not the bf16 path again


def group_names(model, optimizer):
    names = {id(p): n for n, p in model.named_parameters()}
    return [sorted(names[id(p)] for p in group["params"]) for group in optimizer.param_groups]


LLAMA_LIKE = dict(norm="rmsnorm", mlp="gated", activation="silu", n_kv_head=2, qk_norm=True, positional="rope",
                  tie_weights=False, bias=False)


@pytest.mark.parametrize("overrides, matrices, outside", [
    ({}, ("attn.qkv", "attn.proj", "mlp.up", "mlp.down"), ["pos_embed.table.weight", "tok_embed.weight"]),
    ({"tie_weights": False, "lm_head_bias": True}, ("attn.qkv", "attn.proj", "mlp.up", "mlp.down"),
     ["lm_head.weight", "pos_embed.table.weight", "tok_embed.weight"]),
    (LLAMA_LIKE, ("attn.qkv", "attn.proj", "mlp.gate", "mlp.up", "mlp.down"), ["lm_head.weight", "tok_embed.weight"]),
], ids=["tied", "untied", "llama-like"])
def test_muon_takes_the_blocks_matrices_and_adamw_the_rest(tiny_model, overrides, matrices, outside):
    model = tiny_model(**overrides)
    optimizer = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu", kind="muon", muon_lr=0.02)
    assert isinstance(optimizer, MuonWithAdamW) and isinstance(optimizer.muon, Muon)
    decay, no_decay, hidden = group_names(model, optimizer)
    assert hidden == sorted(f"blocks.{i}.{m}.weight" for i in range(2) for m in matrices)
    assert decay == outside  # embeddings and the output layer, tied or not, stay on AdamW
    assert no_decay and all(model.get_parameter(n).dim() == 1 for n in no_decay)  # gains, biases, QK-norm
    assert ("lm_head.bias" in no_decay) is bool(overrides.get("lm_head_bias"))
    everything = {n for n, _ in model.named_parameters()}
    assert sorted(everything) == sorted(decay + no_decay + hidden)  # each parameter exactly once
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0, 0.1]
    assert [g["peak_lr"] for g in optimizer.param_groups] == [1e-3, 1e-3, 0.02]
    assert optimizer.adamw.defaults["fused"] is True  # AdamW's part keeps the fused kernel
    # AdamW alone: two groups, every matrix (hidden ones included) decayed.
    adamw = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu")
    assert isinstance(adamw, torch.optim.AdamW) and len(group_names(model, adamw)[0]) == len(decay) + len(hidden)


def test_schedule_scales_both_groups_and_keeps_their_ratio(tmp_path):
    from gptscratch.training.trainer import Trainer

    data = str(write_corpus(tmp_path / "corpus"))
    trainer = Trainer(tiny_train_config(data, optimizer="muon", lr=1e-3, muon_lr=0.03, max_steps=10, warmup=0.3),
                      run_dir=tmp_path / "run")
    seen = []
    for _ in range(6):  # through the warmup (3 steps) and into the decay
        trainer.train_step()
        adamw_lr, _, muon_lr = (g["lr"] for g in trainer.optimizer.param_groups)
        seen.append(adamw_lr)
        assert muon_lr == pytest.approx(30 * adamw_lr, rel=1e-12) and adamw_lr == trainer.last_lr
    assert seen[0] < seen[2] and seen[3] > seen[5]  # it rose, then fell


def final_losses(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in records if "loss" in r]


def test_a_tiny_model_learns_with_muon(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, optimizer="muon", max_steps=40, eval_every=40, eval_batches=4, sample_tokens=0)
    result = train(config, run_dir=tmp_path / "run")
    losses = final_losses(tmp_path / "run")
    assert losses[0] > 5.0  # ≈ ln(vocabulary): it starts knowing nothing
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0] and result.val_loss < 0.5 * losses[0]


def test_resume_equals_uninterrupted_run_with_muon(tmp_path, monkeypatch):
    from test_training import interrupt_training_at, weights

    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, optimizer="muon", max_steps=8, eval_every=4,
                               model={"context_length": 32, "dropout": 0.1})
    full = train(config, run_dir=tmp_path / "full")
    interrupt_training_at(monkeypatch, 5)  # stops after 4 of the 8 steps
    with pytest.raises(TrainingInterrupted):
        train(config, run_dir=tmp_path / "half")
    saved = ckpt.resolve_checkpoint(tmp_path / "half")
    tensors, state = ckpt.load_trainer_state(saved)
    assert sum(name.endswith(".momentum_buffer") for name in tensors) == 8  # 4 matrices × 2 blocks
    assert state["train_config"]["optimizer"] == "muon"
    resumed = train(config, resume_from=saved)
    assert resumed.step == full.step == 8
    a, b = weights(tmp_path / "full"), weights(tmp_path / "half")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # The run's optimizer is part of the run: a resume cannot switch it.
    with pytest.raises(UsageError, match="--optimizer adamw differs from the run's recorded 'muon'"):
        plan_resume(str(tmp_path / "half"), {"optimizer": "adamw"}, {}, {"max_steps": 10})


def test_optimizer_state_keeps_group_settings_older_checkpoints_lack(tiny_model):
    """A checkpoint written before groups had `peak_lr` resumes with the freshly built value."""
    model = tiny_model()
    optimizer = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu")
    tensors, groups = optimizer_state_tensors(optimizer)
    old_groups = [{k: v for k, v in g.items() if k != "peak_lr"} for g in groups]
    fresh = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu")
    load_optimizer_state(fresh, tensors, old_groups)
    assert [g["peak_lr"] for g in fresh.param_groups] == [1e-3, 1e-3]


def test_manual_backward_trains_with_muon_like_autograd(tmp_path):
    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, optimizer="muon", max_steps=3, eval_every=3, sample_tokens=0)
    train(config, run_dir=tmp_path / "autograd")
    train(config.replace(manual_backward=True), run_dir=tmp_path / "manual")
    a = ckpt.load_checkpoint(tmp_path / "autograd").model.state_dict()
    b = ckpt.load_checkpoint(tmp_path / "manual").model.state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=1e-4, rtol=0, msg=name)
    assert final_losses(tmp_path / "manual")[-1] < final_losses(tmp_path / "manual")[0]


def test_two_processes_under_torchrun_train_like_one_with_muon(tmp_path):
    """DDP averages gradients before the step, so Muon needs nothing of its own: the same weights as one process."""
    from test_distributed import FLAGS, assert_same_weights, single_config

    data = str(write_corpus(tmp_path / "corpus"))
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent), OMP_NUM_THREADS="1")
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                             "-m", "gptscratch", "train", "--data", data, *FLAGS, "--optimizer", "muon",
                             "--max-steps", "4", "--out", str(tmp_path / "ddp")],
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    train(single_config(data, optimizer="muon", max_steps=4), run_dir=tmp_path / "single")
    assert_same_weights(tmp_path / "ddp", tmp_path / "single", atol=1e-4)


# -- the flags, recipe files and --dry-run ------------------------------------------------------------------

def test_recipe_file_and_dry_run_show_the_optimizer(tmp_path, run_cli):
    recipe = tmp_path / "muon.toml"
    recipe.write_text('optimizer = "muon"\nmuon-lr = 0.05\nmax_steps = 3\n')
    from gptscratch.training import load_config_file, preset_config

    config = preset_config(None, load_config_file(recipe))
    assert (config.optimizer, config.muon_lr) == ("muon", 0.05)
    result = run_cli("train", "--config", str(recipe), "--size", "tiny", "--tokenizer", "byte", "--dry-run",
                     "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)["config"]
    assert (shown["optimizer"], shown["muon_lr"]) == ("muon", 0.05)
    human = run_cli("train", "--optimizer", "muon", "--tokenizer", "byte", "--max-steps", "3", "--dry-run")
    assert human.returncode == 0, human.stderr
    assert "optimizer=muon" in human.stdout and "muon_lr=0.02" in human.stdout
    assert TrainConfig(max_steps=1).optimizer == "adamw"  # the default is unchanged


def test_the_estimate_counts_the_moments_each_optimizer_really_keeps(tiny_model):
    """--dry-run's memory and checkpoint figures: AdamW keeps two fp32 moments per parameter, Muon one for the
    blocks' matrices; the estimate must follow the state the optimizers actually hold after a step."""
    from gptscratch.training.estimate import estimate_run

    model = tiny_model(n_kv_head=2, mlp="gated", activation="silu").train()
    total, hidden = model.num_parameters(), sum(p.numel() for p in split_parameters(model)[0])
    held = {}
    for kind in ("adamw", "muon"):
        optimizer = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), "cpu", kind=kind)
        model(torch.randint(0, 101, (2, 8)), torch.randint(0, 101, (2, 8)))[1].backward()
        optimizer.step()
        tensors, _ = optimizer_state_tensors(optimizer)
        held[kind] = sum(t.numel() * t.element_size() for t in tensors.values() if t.numel() > 1)
        model.zero_grad()
        estimate = estimate_run(model.config, 2, 1, "fp32", kind)
        assert estimate.checkpoint_bytes - 64 * 1024 == 4 * total + held[kind]
    assert held["adamw"] == 8 * total and held["muon"] == 8 * total - 4 * hidden and hidden > total // 2


@pytest.mark.parametrize("flags, words", [
    (["--optimizer", "sgd"], "--optimizer must be adamw or muon (got 'sgd')"),
    (["--optimizer", "muon", "--muon-lr", "0"], "--muon-lr must be positive (got 0.0)"),
])
def test_bad_optimizer_values_are_one_line_errors(run_cli, flags, words):
    result = run_cli("train", *flags, "--max-steps", "3", "--dry-run")
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], result.stderr


def test_bad_optimizer_in_a_recipe_file(tmp_path):
    from gptscratch.training import load_config_file, preset_config

    (tmp_path / "bad.toml").write_text('optimizer = "lion"\nmax_steps = 3\n')
    with pytest.raises(UsageError, match="--optimizer must be adamw or muon"):
        preset_config(None, load_config_file(tmp_path / "bad.toml"))
    (tmp_path / "typed.toml").write_text("optimizer = 3\nmax_steps = 3\n")
    with pytest.raises(UsageError, match="typed.toml: optimizer must be a string"):
        load_config_file(tmp_path / "typed.toml")
