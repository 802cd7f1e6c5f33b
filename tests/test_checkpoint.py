"""Checkpoint folders: round-trip, tied weights, crash recovery, clear errors, no pickle."""

import json

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch.errors import CheckpointError, UsageError
from gptscratch.model import GPT, ModelConfig
from gptscratch.tokenizer import get_tokenizer


def make_model(**overrides):
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=320, context_length=16, n_layer=1, n_head=2, d_model=16, **overrides))


def test_round_trip_keeps_logits_and_ties(tmp_path):
    model = make_model()
    path = ckpt.save_checkpoint(tmp_path / "run" / "latest", model, get_tokenizer("byte").spec(),
                                training={"step": 7})
    loaded = ckpt.load_checkpoint(tmp_path / "run")  # a run folder resolves to its latest/
    assert loaded.path == path and loaded.training["step"] == 7
    assert loaded.model.lm_head.weight is loaded.model.tok_embed.weight
    idx = torch.randint(0, 320, (1, 10))
    torch.testing.assert_close(loaded.model(idx)[0], model.eval()(idx)[0], atol=0, rtol=0)
    from safetensors import safe_open
    with safe_open(str(path / ckpt.MODEL_FILE), "pt") as f:
        assert "lm_head.weight" not in f.keys()  # stored once


def test_untied_model_round_trip(tmp_path):
    model = make_model(tie_weights=False, lm_head_bias=True)
    ckpt.save_checkpoint(tmp_path / "c", model, get_tokenizer("byte").spec())
    loaded = ckpt.load_checkpoint(tmp_path / "c")
    assert loaded.model.lm_head.weight is not loaded.model.tok_embed.weight
    torch.testing.assert_close(loaded.model.lm_head.bias, model.lm_head.bias)


def test_loading_never_unpickles(tmp_path, monkeypatch):
    ckpt.save_checkpoint(tmp_path / "c", make_model(), get_tokenizer("byte").spec())

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load (pickle) must not be used")

    monkeypatch.setattr(torch, "load", forbidden)
    import pickle
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    ckpt.load_checkpoint(tmp_path / "c")


def test_interrupted_swap_recovers_previous_checkpoint(tmp_path):
    run = tmp_path / "run"
    ckpt.save_checkpoint(run / "latest", make_model(), get_tokenizer("byte").spec(), training={"step": 1})
    # A crash between the two renames: latest/ was moved aside, the new one never arrived.
    (run / "latest").rename(run / "latest.old")
    (run / ".latest.tmp-999").mkdir()
    assert ckpt.resolve_checkpoint(run) == run / "latest.old"
    assert ckpt.load_checkpoint(run).training["step"] == 1
    ckpt.save_checkpoint(run / "latest", make_model(), get_tokenizer("byte").spec(), training={"step": 2})
    assert sorted(p.name for p in run.iterdir()) == ["latest"]
    assert ckpt.load_checkpoint(run).training["step"] == 2


def test_failed_save_leaves_old_checkpoint(tmp_path, monkeypatch):
    run = tmp_path / "run"
    ckpt.save_checkpoint(run / "latest", make_model(), get_tokenizer("byte").spec(), training={"step": 1})
    import safetensors.torch

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(run / "latest", make_model(), get_tokenizer("byte").spec(), training={"step": 2})
    assert sorted(p.name for p in run.iterdir()) == ["latest"]
    assert ckpt.load_checkpoint(run).training["step"] == 1


def test_errors_are_clear(tmp_path):
    with pytest.raises(UsageError, match="no checkpoint or run named"):
        ckpt.resolve_checkpoint(tmp_path / "missing")
    with pytest.raises(UsageError, match="train one"):
        ckpt.resolve_checkpoint(None)
    path = ckpt.save_checkpoint(tmp_path / "c", make_model(), get_tokenizer("byte").spec())
    (path / ckpt.MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        ckpt.load_checkpoint(path)
    (path / ckpt.CONFIG_FILE).write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a gptscratch checkpoint"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no trainer state"):
        ckpt.load_trainer_state(path)
