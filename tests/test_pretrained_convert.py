"""Conversion parity: tiny random transformers GPT-2 and Phi models, saved in hub layout and converted by the
real code path, give the same logits (fp32, atol 1e-5) and the same greedy tokens as transformers — with and
without our KV cache. Plus the loud failures: shapes, unknown tensors, unsupported architectures."""

from __future__ import annotations

import json

import pytest
import torch
from test_pretrained_support import assert_same_greedy_tokens, assert_same_logits, tiny_gpt2, tiny_phi, to_hub_layout

from gptscratch.checkpoint import load_checkpoint
from gptscratch.errors import CheckpointError, UsageError
from gptscratch.pretrained.convert import convert_hf_folder


def convert_and_load(hf_dir, out_dir, **kwargs):
    convert_hf_folder(hf_dir, out_dir, **kwargs)
    return load_checkpoint(out_dir).model


def test_gpt2_logits_and_greedy_generation_match_transformers(tmp_path):
    reference = tiny_gpt2(tmp_path / "hf")
    ours = convert_and_load(tmp_path / "hf", tmp_path / "ours")
    assert ours.lm_head.weight is ours.tok_embed.weight  # tied, one Parameter
    assert_same_logits(ours, reference)
    assert_same_greedy_tokens(ours, reference)


def test_gpt2_hub_layout_with_buffers_and_sharded_files(tmp_path):
    reference = tiny_gpt2(tmp_path / "hub")
    to_hub_layout(tmp_path / "hub")  # no "transformer." prefix, attn.bias / masked_bias buffers present
    assert_same_logits(convert_and_load(tmp_path / "hub", tmp_path / "a"), reference)
    reference.save_pretrained(str(tmp_path / "sharded"), max_shard_size="40KB")
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / "sharded" / name).write_bytes((tmp_path / "hub" / name).read_bytes())
    assert (tmp_path / "sharded" / "model.safetensors.index.json").is_file()
    assert_same_logits(convert_and_load(tmp_path / "sharded", tmp_path / "b"), reference)


def test_untied_gpt2_and_exact_gelu(tmp_path):
    reference = tiny_gpt2(tmp_path / "hf", tie_word_embeddings=False, activation_function="gelu", n_inner=48)
    ours = convert_and_load(tmp_path / "hf", tmp_path / "ours")
    assert not ours.config.tie_weights and ours.config.activation == "gelu" and ours.config.hidden_dim == 48
    assert_same_logits(ours, reference)


def test_phi_logits_and_greedy_generation_match_transformers(tmp_path):
    reference = tiny_phi(tmp_path / "hf")
    ours = convert_and_load(tmp_path / "hf", tmp_path / "ours")
    c = ours.config
    assert (c.block_layout, c.positional, c.rotary_dims, c.lm_head_bias, c.tie_weights) == \
        ("parallel", "rope", 4, True, False)
    assert ours.blocks[0].ln_2 is None  # one LayerNorm per block
    assert_same_logits(ours, reference)
    assert_same_greedy_tokens(ours, reference)


def test_phi_tokenizer_with_added_tokens_is_bundled(tmp_path):
    tiny_phi(tmp_path / "hf")
    convert_hf_folder(tmp_path / "hf", tmp_path / "ours")
    (tmp_path / "hf" / "vocab.json").unlink()  # the checkpoint must not depend on the source folder
    loaded = load_checkpoint(tmp_path / "ours")
    assert loaded.config["tokenizer"]["path"] == "tokenizer"
    assert loaded.tokenizer.vocab_size == 304 and loaded.tokenizer.encode("a    b")[1] == 301  # ADDED[1], after the 8 spaces


def test_dtype_choice_is_stored_and_loaded(tmp_path):
    tiny_gpt2(tmp_path / "hf")
    model = convert_and_load(tmp_path / "hf", tmp_path / "bf16", dtype="bfloat16")
    assert model.tok_embed.weight.dtype == torch.bfloat16
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["pretrained"]["dtype"] == "bfloat16"
    with pytest.raises(UsageError, match="unknown dtype"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "x", dtype="int3")


def _edit_config(folder, **changes):
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_shape_mismatch_and_unknown_tensors_fail_loudly_and_write_nothing(tmp_path):
    tiny_gpt2(tmp_path / "hf")
    _edit_config(tmp_path / "hf", n_inner=100)
    with pytest.raises(CheckpointError, match=r"shape mismatch: h.0.mlp.c_fc.weight gives \(128, 32\) but "
                                              r"blocks.0.mlp.up.weight needs \(100, 32\)"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    _edit_config(tmp_path / "hf", n_inner=None, n_layer=1)
    with pytest.raises(CheckpointError, match="does not have .first: h.1"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")
    _edit_config(tmp_path / "hf", n_layer=3)
    with pytest.raises(CheckpointError, match=r"lacks 12 tensors .*\(first: h.2"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")


def test_unsupported_architectures_are_refused_naming_the_supported_ones(tmp_path):
    tiny_gpt2(tmp_path / "hf")
    _edit_config(tmp_path / "hf", model_type="mistral", architectures=["MistralForCausalLM"])
    with pytest.raises(UsageError, match=r"mistral .*converts only gpt2 \(GPT2LMHeadModel\), phi \(PhiForCausalLM\), "
                                         r"llama \(LlamaForCausalLM\), qwen2 \(Qwen2ForCausalLM\), qwen3"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")
    _edit_config(tmp_path / "hf", model_type="gpt2", scale_attn_by_inverse_layer_idx=True)
    with pytest.raises(UsageError, match="scale_attn_by_inverse_layer_idx"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")
    with pytest.raises(UsageError, match="no config.json"):
        convert_hf_folder(tmp_path, tmp_path / "out")


def test_a_converted_folder_goes_to_the_pretrained_cache_under_its_own_name(tmp_path, monkeypatch):
    from gptscratch.paths import pretrained_root
    from gptscratch.pretrained.convert import default_target

    assert default_target(tmp_path / "gpt2-finetune") == pretrained_root() / "gpt2-finetune"
    monkeypatch.chdir(tmp_path)
    assert default_target("my-model") == pretrained_root() / "my-model"
    assert default_target(".") == pretrained_root() / tmp_path.resolve().name    # the folder's real name, not "."
