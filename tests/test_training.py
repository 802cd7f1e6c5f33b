"""The training loop: schedule, exact resume, NaN and Ctrl-C handling, learning for real."""

import json
import math

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch.errors import TrainingError, UsageError
from gptscratch.training import TrainingInterrupted, train
from gptscratch.training.config import parse_duration, preset_config
from gptscratch.training.schedule import learning_rate
from helpers import interrupt_sampler_at, tiny_train_config, write_corpus

torch.set_num_threads(1)


def test_schedule_warmup_then_cosine_to_floor():
    assert learning_rate(0.0, 1.0, warmup=0.1) < 0.01
    assert learning_rate(0.05, 1.0, warmup=0.1) == pytest.approx(0.5)
    assert learning_rate(0.1, 1.0, warmup=0.1) == pytest.approx(1.0)
    assert learning_rate(0.55, 1.0, warmup=0.1) == pytest.approx(0.55)  # halfway down: (1 + 0.1) / 2
    assert learning_rate(1.0, 1.0, warmup=0.1) == pytest.approx(0.1)
    values = [learning_rate(p / 100, 1.0, warmup=0.1) for p in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_durations_and_presets():
    assert parse_duration("90s") == 90 and parse_duration("3m") == 180 and parse_duration("1.5h") == 5400
    assert parse_duration("45") == 45
    with pytest.raises(UsageError):
        parse_duration("soon")
    quick = preset_config("quick", max_time=30.0)
    assert quick.max_time == 30.0 and quick.tokenizer == "byte"
    with pytest.raises(UsageError, match="budget"):
        preset_config(None)
    with pytest.raises(UsageError, match="unknown preset"):
        preset_config("huge")


def weights(run_dir):
    return ckpt.load_checkpoint(run_dir).model.state_dict()


def interrupt_training_at(monkeypatch, batch_number):
    """Make the train sampler raise KeyboardInterrupt (as Ctrl-C would) when asked for this batch."""
    from gptscratch.data.sampler import WindowSampler

    interrupt_sampler_at(monkeypatch, WindowSampler, batch_number)


def test_resume_equals_uninterrupted_run(tmp_path, monkeypatch):
    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=8, eval_every=4, model={"context_length": 32, "dropout": 0.1})
    full = train(config, run_dir=tmp_path / "full")
    interrupt_training_at(monkeypatch, 5)  # stops after 4 of the 8 steps
    with pytest.raises(TrainingInterrupted):
        train(config, run_dir=tmp_path / "half")
    resumed = train(config, resume_from=ckpt.resolve_checkpoint(tmp_path / "half"))
    assert resumed.step == full.step == 8 and resumed.tokens == full.tokens
    a, b = weights(tmp_path / "full"), weights(tmp_path / "half")
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # The metrics log of the resumed run has each step once.
    steps = [json.loads(l)["step"] for l in (tmp_path / "half" / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(l)]
    assert steps == list(range(1, 9))


def test_nan_loss_stops_with_step_and_keeps_checkpoint(tmp_path, monkeypatch):
    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=10, eval_every=2)
    from gptscratch.model import GPT

    original, calls = GPT.forward, {"n": 0}

    def poisoned(self, idx, targets=None, **kwargs):
        logits, loss = original(self, idx, targets, **kwargs)
        if self.training:
            calls["n"] += 1
            if calls["n"] == 5:
                loss = loss * float("nan")
        return logits, loss

    monkeypatch.setattr(GPT, "forward", poisoned)
    with pytest.raises(TrainingError, match="at step 5"):
        train(config, run_dir=tmp_path / "run")
    assert ckpt.load_checkpoint(tmp_path / "run").training["step"] == 4


def test_ctrl_c_saves_and_exits_130(tmp_path, monkeypatch):
    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=10, eval_every=100)
    interrupt_training_at(monkeypatch, 4)
    with pytest.raises(TrainingInterrupted) as info:
        train(config, run_dir=tmp_path / "run")
    assert info.value.exit_code == 130
    assert ckpt.load_checkpoint(tmp_path / "run").training["step"] == 3


def test_tiny_model_learns_below_unigram_baseline(tmp_path):
    """Validation loss ends well below the entropy of the unigram distribution of the data."""
    from gptscratch.data import resolve_dataset

    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=150, eval_every=150, eval_batches=8, batch_size=8, lr=1e-2)
    result = train(config, run_dir=tmp_path / "run")
    tokens = torch.from_numpy(resolve_dataset(data, "byte").tokens("train").astype("int64"))
    p = torch.bincount(tokens).float()
    p = p[p > 0] / p.sum()
    unigram = -(p * p.log()).sum().item()
    assert result.val_loss < unigram - 1.0, (result.val_loss, unigram)
    assert math.isfinite(result.tokens_per_second) and result.tokens_per_second > 0
