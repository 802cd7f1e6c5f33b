"""LoRA fine-tuning (gptscratch/model/lora.py, training/lora.py): the wrapped model starts equal to the base, merges
to the same function, trains only its adapters, resumes exactly, round-trips through checkpoints, merges and
exports to transformers with the same logits, and refuses what it cannot do in one line."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from gptscratch import checkpoint as ckpt
from gptscratch.errors import CheckpointError, UsageError
from gptscratch.model.layers import Linear
from gptscratch.model.lora import (LoRALinear, apply_lora, base_state_dict, has_lora, lora_state_dict, merge_lora)
from gptscratch.tokenizers import get_tokenizer
from helpers import tiny_train_config, write_corpus

torch.set_num_threads(1)

GATED = dict(positional="rope", norm="rmsnorm", mlp="gated", activation="silu", bias=False)


def randomize_adapters(model, scale: float = 0.2) -> None:
    """B starts at zero (the adapter adds nothing): give every adapter a random B, as training would."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("lora_B"):
                param.copy_(torch.randn_like(param) * scale)


def logits(model, idx):
    with torch.no_grad():
        return model(idx)[0]


@pytest.mark.parametrize("shape", [{}, GATED], ids=["standard", "gated"])
def test_step_zero_equals_the_base_model_and_only_adapters_train(tiny_model, shape):
    model = tiny_model(**shape)
    idx = torch.randint(0, 101, (2, 20))
    before, names_before = logits(model, idx), set(model.state_dict())
    wrapped = apply_lora(model, rank=4, alpha=8.0)
    per_block = ["attn.qkv", "attn.proj", *(["mlp.gate"] if shape else []), "mlp.up", "mlp.down"]
    assert wrapped == [f"blocks.{i}.{layer}" for i in range(2) for layer in per_block]  # gate only where it exists
    assert torch.equal(logits(model, idx), before)                                        # B = 0: exactly the base
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{layer}.{ab}" for layer in wrapped for ab in ("lora_A", "lora_B")}
    assert set(base_state_dict(model)) == names_before          # base weights keep their names (no `.base.`)
    assert set(lora_state_dict(model)) == trainable and has_lora(model)
    assert model.blocks[0].attn.qkv.lora_A.shape == (4, 32) and model.blocks[0].attn.qkv.lora_B.shape == (96, 4)


def test_merged_model_computes_the_same_logits(tiny_model):
    model = tiny_model(**GATED)
    apply_lora(model, rank=4, alpha=16.0, targets="qkv,gate,down")
    randomize_adapters(model)
    idx = torch.randint(0, 101, (2, 20))
    unmerged = logits(model, idx)
    base = tiny_model(**GATED)
    assert (unmerged - logits(base, idx)).abs().max() > 1e-2          # the adapters do change the model
    merged = merge_lora(model)
    assert len(merged) == 6 and not has_lora(model)
    assert type(model.blocks[0].attn.qkv) is Linear and not any(isinstance(m, LoRALinear) for m in model.modules())
    torch.testing.assert_close(logits(model, idx), unmerged, atol=1e-5, rtol=0)


@pytest.mark.parametrize("product", ["mv", "column-major"])
def test_unmerged_model_decodes_through_accel_kernels_like_the_merged_one(tiny_model, product):
    """accel's one-row decode kernels recognise a Linear by its weight: the adapter must still be added."""
    from gptscratch.accel.decoding import decoding_kernels
    from gptscratch.generation.engine import generate_ids
    from gptscratch.generation.sampling import SamplingConfig
    from gptscratch.model import kernels

    model = tiny_model()
    apply_lora(model, rank=4, alpha=16.0)
    randomize_adapters(model, scale=0.5)
    merged = copy.deepcopy(model)
    merge_lora(merged)                                            # the same weights, adapters folded in
    row = torch.randint(0, 101, (1, 1))
    table = decoding_kernels(model, product)
    assert table is not None and table.name == f"decode ({product})"
    with torch.no_grad(), kernels.use(table):
        fast = model(row)[0]
    torch.testing.assert_close(fast, logits(merged, row), atol=1e-5, rtol=0)
    greedy = SamplingConfig(temperature=0)
    prompt = [5, 17, 3]
    assert list(generate_ids(model, prompt, 20, greedy)) == list(generate_ids(merged, prompt, 20, greedy))


def test_training_changes_only_the_adapters_and_saves_them_apart(tmp_path):
    from gptscratch.training.trainer import Trainer

    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=4, eval_every=4, lora_rank=4, lora_alpha=8.0, weight_decay=0.1)
    trainer = Trainer(config, run_dir=tmp_path / "run")
    start = {name: t.clone() for name, t in trainer.model.state_dict().items()}
    optimized = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    adapters = {id(p) for name, p in trainer.model.named_parameters() if "lora_" in name}
    assert {id(p) for p in optimized} == adapters and len(optimized) == 2 * 2 * 4   # A, B of 4 layers × 2 blocks
    trainer.run()
    end = trainer.model.state_dict()
    for name in base_state_dict(trainer.model):
        assert torch.equal(end[name], start[name]), f"frozen {name} changed"
    for name in lora_state_dict(trainer.model):
        assert not torch.equal(end[name], start[name]), f"adapter {name} did not train"
    folder = tmp_path / "run" / "latest"
    assert (folder / ckpt.ADAPTER_FILE).is_file()
    config_json = json.loads((folder / ckpt.CONFIG_FILE).read_text())
    assert config_json["lora"] == {"rank": 4, "alpha": 8.0, "dropout": 0.0, "targets": ["qkv", "proj", "up", "down"]}
    from safetensors.torch import load_file

    base_file, adapter_file = load_file(str(folder / ckpt.MODEL_FILE)), load_file(str(folder / ckpt.ADAPTER_FILE))
    assert set(adapter_file) == set(lora_state_dict(trainer.model))
    assert not any("lora" in name for name in base_file)
    for name, tensor in base_file.items():                       # the base weights as they were at step 0
        assert torch.equal(tensor, start[name]), name
    loaded = ckpt.load_checkpoint(folder)                         # rebuilt unmerged, same function
    assert has_lora(loaded.model)
    idx = torch.randint(0, 257, (2, 16))
    trainer.model.eval()
    assert torch.equal(logits(loaded.model, idx), logits(trainer.model, idx))


def test_resume_continues_exactly(tmp_path):
    from gptscratch.training.trainer import Trainer

    data = str(write_corpus(tmp_path / "corpus"))
    config = tiny_train_config(data, max_steps=8, lora_rank=4, lora_dropout=0.1,
                               model={"context_length": 32, "dropout": 0.1})
    straight = Trainer(config, run_dir=tmp_path / "straight")
    for _ in range(8):
        straight.train_step()
    first_half = Trainer(config, run_dir=tmp_path / "halves")
    for _ in range(4):
        first_half.train_step()
    first_half.save("latest")
    second_half = Trainer(config, resume_from=tmp_path / "halves" / "latest")
    assert second_half.step == 4 and has_lora(second_half.model)
    for _ in range(4):
        second_half.train_step()
    a, b = straight.model.state_dict(), second_half.model.state_dict()
    assert set(a) == set(b)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not torch.equal(a["blocks.0.attn.qkv.lora_B"], first_half.model.state_dict()["blocks.0.attn.qkv.lora_B"])


def test_checkpoint_round_trip_and_damaged_adapters(tmp_path, tiny_model):
    model = tiny_model(vocab_size=257)
    apply_lora(model, rank=2, alpha=4.0, dropout=0.05, targets="qkv,up")
    randomize_adapters(model)
    ckpt.save_checkpoint(tmp_path / "lora", model, get_tokenizer("byte").spec())
    loaded = ckpt.load_checkpoint(tmp_path / "lora")
    assert ckpt.read_config(tmp_path / "lora")["lora"]["targets"] == ["qkv", "up"]
    assert isinstance(loaded.model.blocks[1].mlp.up, LoRALinear) and type(loaded.model.blocks[1].mlp.down) is Linear
    idx = torch.randint(0, 257, (2, 16))
    assert torch.equal(logits(loaded.model, idx), logits(model, idx))
    merged = ckpt.load_checkpoint(tmp_path / "lora").model
    assert merge_lora(merged) and not has_lora(merged)
    torch.testing.assert_close(logits(merged, idx), logits(model, idx), atol=1e-5, rtol=0)
    # A crash between the two renames of a save leaves lora.old: it is recognised (adapter file and all) and cleared.
    (tmp_path / "lora").rename(tmp_path / "lora.old")
    ckpt.save_checkpoint(tmp_path / "lora", model, get_tokenizer("byte").spec())
    assert not (tmp_path / "lora.old").exists() and has_lora(ckpt.load_checkpoint(tmp_path / "lora").model)
    # A plain checkpoint has neither the file nor the key.
    ckpt.save_checkpoint(tmp_path / "plain", tiny_model(vocab_size=257), get_tokenizer("byte").spec())
    assert "lora" not in ckpt.read_config(tmp_path / "plain")
    assert not (tmp_path / "plain" / ckpt.ADAPTER_FILE).exists()
    # Adapters gone: one clear line, not a state-dict traceback.
    (tmp_path / "lora" / ckpt.ADAPTER_FILE).unlink()
    with pytest.raises(CheckpointError, match="holds no adapter.safetensors but its config.json records") as error:
        ckpt.load_checkpoint(tmp_path / "lora")
    assert "\n" not in str(error.value)


def test_merge_command_writes_an_ordinary_checkpoint(tmp_path, tiny_model, run_cli):
    model = tiny_model(vocab_size=257)
    apply_lora(model, rank=4, alpha=16.0)
    randomize_adapters(model)
    ckpt.save_checkpoint(tmp_path / "lora", model, get_tokenizer("byte").spec(), training={"step": 7})
    result = run_cli("pretrained", "merge", str(tmp_path / "lora"), "--out", str(tmp_path / "merged"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(tmp_path / "merged")
    saved = ckpt.read_config(tmp_path / "merged")
    assert "lora" not in saved and saved["merged_lora"]["rank"] == 4 and saved["training"] == {"step": 7}
    assert not (tmp_path / "merged" / ckpt.ADAPTER_FILE).exists()
    merged = ckpt.load_checkpoint(tmp_path / "merged").model
    assert not has_lora(merged)
    idx = torch.randint(0, 257, (2, 16))
    torch.testing.assert_close(logits(merged, idx), logits(model, idx), atol=1e-5, rtol=0)
    # Merging a checkpoint without adapters: one line, exit 2, nothing written.
    refused = run_cli("pretrained", "merge", str(tmp_path / "merged"), "--out", str(tmp_path / "again"))
    assert refused.returncode == 2 and "has no LoRA adapters" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and not (tmp_path / "again").exists()


@pytest.mark.parametrize("shape, hf_class", [(dict(activation="gelu_tanh"), "GPT2LMHeadModel"),
                                             (dict(GATED, n_kv_head=2), "LlamaForCausalLM")],
                         ids=["gpt2", "llama"])
def test_hf_export_of_a_lora_checkpoint_matches_transformers(tmp_path, tiny_model, shape, hf_class):
    from transformers import AutoModelForCausalLM

    from gptscratch.pretrained.export import export_hf

    model = tiny_model(vocab_size=257, **shape)
    apply_lora(model, rank=4, alpha=16.0)
    randomize_adapters(model)
    ckpt.save_checkpoint(tmp_path / "lora", model, get_tokenizer("byte").spec())
    assert export_hf(tmp_path / "lora", tmp_path / "hf")["architecture"] == hf_class
    hf = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    idx = torch.randint(0, 257, (2, 16))
    with torch.no_grad():
        theirs = hf(idx).logits
    ours = logits(model, idx)
    assert (ours - logits(tiny_model(vocab_size=257, **shape), idx)).abs().max() > 1e-2   # adapters matter here
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)


def test_refusals_are_one_line(tmp_path, tiny_model):
    from gptscratch.training.trainer import Trainer

    data = str(write_corpus(tmp_path / "corpus"))
    with pytest.raises(UsageError, match="--manual-backward cannot train LoRA"):
        Trainer(tiny_train_config(data, lora_rank=4, manual_backward=True), run_dir=tmp_path / "a")
    with pytest.raises(UsageError, match="unknown LoRA target 'attn'; choose from qkv, proj, gate, up, down"):
        Trainer(tiny_train_config(data, lora_rank=4, lora_targets="qkv,attn"), run_dir=tmp_path / "b")
    with pytest.raises(UsageError, match="no layer of this model is one of gate"):  # a standard MLP has no gate
        Trainer(tiny_train_config(data, lora_rank=4, lora_targets="gate"), run_dir=tmp_path / "c")
    model = tiny_model()
    apply_lora(model, rank=2)
    with pytest.raises(ValueError, match="already has LoRA adapters"):
        apply_lora(model, rank=2)
    from gptscratch.pretrained.export import merge_checkpoint

    ckpt.save_checkpoint(tmp_path / "plain", tiny_model(vocab_size=257), get_tokenizer("byte").spec())
    with pytest.raises(UsageError, match="has no LoRA adapters to merge") as error:
        merge_checkpoint(tmp_path / "plain", tmp_path / "out")
    assert "\n" not in str(error.value) and not (tmp_path / "out").exists()


def test_init_from_a_lora_run_starts_from_its_merged_weights(tmp_path):
    from gptscratch.training.trainer import Trainer

    data = str(write_corpus(tmp_path / "corpus"))
    first = Trainer(tiny_train_config(data, max_steps=2, eval_every=2, lora_rank=4), run_dir=tmp_path / "lora")
    first.run()
    merged = ckpt.load_checkpoint(tmp_path / "lora").model
    merge_lora(merged)
    merged = merged.state_dict()
    full = Trainer(tiny_train_config(data, init_from=str(tmp_path / "lora")), run_dir=tmp_path / "full")
    assert not has_lora(full.model)
    for name, tensor in full.model.state_dict().items():
        assert torch.equal(tensor, merged[name]), name
    again = Trainer(tiny_train_config(data, init_from=str(tmp_path / "lora"), lora_rank=2), run_dir=tmp_path / "b")
    assert again.model.blocks[0].attn.qkv.rank == 2          # fresh adapters on top of the merged weights
    assert torch.equal(again.model.blocks[0].attn.qkv.weight, merged["blocks.0.attn.qkv.weight"])
