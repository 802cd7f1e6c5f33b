"""Checkpoint folders: round-trip, tied weights, crash recovery, clear errors, no pickle, loading on meta."""

import ast
import json
from pathlib import Path

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch.errors import CheckpointError, CheckpointNotFoundError, UsageError
from gptscratch.tokenizers import get_tokenizer


BYTE_VOCAB = 320   # the byte tokenizer's 257 ids, padded as training pads them
BYTE = get_tokenizer("byte").spec()


def test_round_trip_keeps_logits_and_ties(tmp_path, tiny_model):
    model = tiny_model(vocab_size=BYTE_VOCAB)
    path = ckpt.save_checkpoint(tmp_path / "run" / "latest", model, BYTE,
                                training={"step": 7})
    loaded = ckpt.load_checkpoint(tmp_path / "run")  # a run folder resolves to its latest/
    assert loaded.path == path and loaded.training["step"] == 7
    assert loaded.model.lm_head.weight is loaded.model.tok_embed.weight
    idx = torch.randint(0, BYTE_VOCAB, (1, 10))
    torch.testing.assert_close(loaded.model(idx)[0], model(idx)[0], atol=0, rtol=0)
    from safetensors import safe_open
    with safe_open(str(path / ckpt.MODEL_FILE), "pt") as f:
        assert "lm_head.weight" not in f.keys()  # stored once


def test_untied_model_round_trip(tmp_path, tiny_model):
    model = tiny_model(vocab_size=BYTE_VOCAB, tie_weights=False, lm_head_bias=True)
    ckpt.save_checkpoint(tmp_path / "c", model, BYTE)
    loaded = ckpt.load_checkpoint(tmp_path / "c")
    assert loaded.model.lm_head.weight is not loaded.model.tok_embed.weight
    torch.testing.assert_close(loaded.model.lm_head.bias, model.lm_head.bias)


def test_loading_never_unpickles(tmp_path, monkeypatch, tiny_model):
    ckpt.save_checkpoint(tmp_path / "c", tiny_model(vocab_size=BYTE_VOCAB), BYTE)

    def forbidden(*args, **kwargs):
        raise AssertionError("torch.load (pickle) must not be used")

    monkeypatch.setattr(torch, "load", forbidden)
    import pickle
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    ckpt.load_checkpoint(tmp_path / "c")


def test_interrupted_swap_recovers_previous_checkpoint(tmp_path, tiny_model):
    run = tmp_path / "run"
    ckpt.save_checkpoint(run / "latest", tiny_model(vocab_size=BYTE_VOCAB), BYTE, training={"step": 1})
    # A crash between the two renames: latest/ was moved aside, the new one never arrived.
    (run / "latest").rename(run / "latest.old")
    (run / ".latest.tmp-999").mkdir()
    assert ckpt.resolve_checkpoint(run) == run / "latest.old"
    assert ckpt.load_checkpoint(run).training["step"] == 1
    ckpt.save_checkpoint(run / "latest", tiny_model(vocab_size=BYTE_VOCAB), BYTE, training={"step": 2})
    assert sorted(p.name for p in run.iterdir()) == ["latest"]
    assert ckpt.load_checkpoint(run).training["step"] == 2


def test_failed_save_leaves_old_checkpoint(tmp_path, monkeypatch, tiny_model):
    run = tmp_path / "run"
    ckpt.save_checkpoint(run / "latest", tiny_model(vocab_size=BYTE_VOCAB), BYTE, training={"step": 1})
    import safetensors.torch

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(run / "latest", tiny_model(vocab_size=BYTE_VOCAB), BYTE, training={"step": 2})
    assert sorted(p.name for p in run.iterdir()) == ["latest"]
    assert ckpt.load_checkpoint(run).training["step"] == 1


def test_errors_are_clear(tmp_path, tiny_model):
    with pytest.raises(UsageError, match="no checkpoint or run named"):
        ckpt.resolve_checkpoint(tmp_path / "missing")
    with pytest.raises(UsageError, match="train one"):
        ckpt.resolve_checkpoint(None)
    path = ckpt.save_checkpoint(tmp_path / "c", tiny_model(vocab_size=BYTE_VOCAB), BYTE)
    (path / ckpt.MODEL_FILE).write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        ckpt.load_checkpoint(path)
    (path / ckpt.CONFIG_FILE).write_text(json.dumps({"hello": 1}))
    with pytest.raises(CheckpointError, match="not a gptscratch checkpoint"):
        ckpt.load_checkpoint(path)
    with pytest.raises(CheckpointError, match="no trainer state"):
        ckpt.load_trainer_state(path)


@pytest.mark.parametrize("positional", ["learned", "sinusoidal", "rope"])
def test_loaded_model_is_complete_on_the_target_device(tmp_path, positional, tiny_model):
    """Built on `meta` and given the file's tensors: nothing may stay on meta. The model keeps no buffers (its
    rotary / sinusoidal tables are computed on the fly), so the file holds everything it computes with."""
    model = tiny_model(vocab_size=BYTE_VOCAB, positional=positional,
                       rotary_fraction=0.5 if positional == "rope" else 1.0)
    ckpt.save_checkpoint(tmp_path / "c", model, BYTE)
    loaded = ckpt.load_checkpoint(tmp_path / "c").model
    assert not [name for name, t in [*loaded.named_parameters(), *loaded.named_buffers()] if t.is_meta]
    assert list(model.named_buffers()) == list(loaded.named_buffers()) == []
    idx = torch.randint(0, BYTE_VOCAB, (2, 12))
    torch.testing.assert_close(loaded(idx)[0], model(idx)[0], atol=0, rtol=0)


def test_loading_a_large_model_initialises_nothing_and_a_small_one_keeps_the_random_state(tmp_path, monkeypatch,
                                                                                          tiny_model):
    """Peak memory ≈ one copy of the weights: a large model is built on `meta`, so no initialiser touches real
    memory. A small one is built for real (cheaper than the meta device's first use), torch's random state kept."""
    from gptscratch import skeleton

    ckpt.save_checkpoint(tmp_path / "c", tiny_model(vocab_size=BYTE_VOCAB), BYTE)
    initialised = []
    original = torch.nn.init.normal_

    def recording(tensor, *args, **kwargs):
        if not tensor.is_meta:
            initialised.append(tuple(tensor.shape))
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(torch.nn.init, "normal_", recording)
    state = torch.get_rng_state()
    ckpt.load_checkpoint(tmp_path / "c")          # small: built for real...
    assert initialised
    assert torch.equal(torch.get_rng_state(), state)   # ...without moving anyone's random numbers
    monkeypatch.setattr(skeleton, "SMALL_MODEL_PARAMETERS", 0)
    initialised.clear()
    ckpt.load_checkpoint(tmp_path / "c")          # large: shapes only
    assert initialised == []


def test_a_missing_name_is_a_typed_error_carrying_the_name(tmp_path):
    """checkpoint.py knows nothing of pretrained/: the pretrained layer adds the download hint from `name`."""
    with pytest.raises(CheckpointNotFoundError) as missing:
        ckpt.resolve_checkpoint("gpt2-xl")
    assert missing.value.name == "gpt2-xl" and isinstance(missing.value, UsageError)
    assert missing.value.exit_code == 2 and "pretrained" not in str(missing.value)


def test_checkpoint_imports_nothing_from_pretrained():
    tree = ast.parse(Path(ckpt.__file__).read_text(encoding="utf-8"))
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if "pretrained" in name.split(".")]
