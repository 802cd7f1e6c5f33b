"""Llama, Qwen2 and Qwen3 weights in the from-scratch GPT, and back: tiny random `transformers` models of each
(GQA with 1 and 2 key/value heads, tied and untied heads, non-default rope bases, Llama 3 rope scaling, the bias
switches, QK-norm), saved in hub layout with a tokenizer.json and converted by the real code path, give
transformers' logits (fp32) and its greedy tokens with and without our KV cache; `export --format hf` loads back
in AutoModelForCausalLM / AutoTokenizer with the same logits and ids. Plus the hub-style config files of the
registry's models, the context cap, and the loud refusals. No network."""

from __future__ import annotations

import json

import pytest
import torch
from test_pretrained_support import (LLAMA_SHAPE, TEXT, assert_same_greedy_tokens, assert_same_logits,
                                     make_json_tokenizer, tiny_llama)

from gptscratch.checkpoint import load_checkpoint
from gptscratch.errors import CheckpointError, UsageError
from gptscratch.pretrained.architectures import ARCHITECTURES
from gptscratch.pretrained.convert import convert_hf_folder
from gptscratch.pretrained.export import export_hf
from gptscratch.tokenizers import HfJsonTokenizer

# rope_theta 1000 with 8-wide heads and an original context of 64 puts one rotary pair in each llama3 branch:
# wavelengths 6.3 (kept, < 64/4), 35 (interpolated), 199 and 1117 (divided by the factor, > 64/1).
LLAMA3 = {"rope_type": "llama3", "rope_theta": 1000.0, "factor": 4.0, "low_freq_factor": 1.0,
          "high_freq_factor": 4.0, "original_max_position_embeddings": 64}
CASES = {  # name: (architecture, config overrides, what our ModelConfig must say)
    "llama-gqa2-tied-theta": ("llama", dict(tie_word_embeddings=True, rope_theta=100000.0),
                              dict(n_kv_head=2, tie_weights=True, rope_base=100000.0, has_qkv_bias=False)),
    "llama-mqa-untied-llama3-biases": ("llama", dict(num_key_value_heads=1, tie_word_embeddings=False,
                                                     rope_parameters=LLAMA3, max_position_embeddings=128,
                                                     attention_bias=True, mlp_bias=True),
                                       dict(n_kv_head=1, tie_weights=False, rope_scaling="llama3",
                                            has_attention_out_bias=True, has_mlp_bias=True)),
    "qwen2-gqa2-tied": ("qwen2", dict(tie_word_embeddings=True, rope_theta=1e6),
                        dict(n_kv_head=2, has_qkv_bias=True, has_attention_out_bias=False, has_mlp_bias=False)),
    "qwen3-mqa-untied-qknorm": ("qwen3", dict(num_key_value_heads=1, tie_word_embeddings=False, head_dim=8,
                                              rope_theta=1e6),
                                dict(n_kv_head=1, qk_norm=True, tie_weights=False, has_qkv_bias=False)),
}
EXPORTED_CLASS = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}


@pytest.mark.parametrize("case", CASES)
def test_logits_and_greedy_generation_match_transformers(tmp_path, case):
    arch, overrides, expected = CASES[case]
    reference = tiny_llama(tmp_path / "hf", arch, **overrides)
    convert_hf_folder(tmp_path / "hf", tmp_path / "ours")
    loaded = load_checkpoint(tmp_path / "ours")
    ours = loaded.model
    c = ours.config
    assert (c.norm, c.mlp, c.activation, c.positional, c.layer_norm_eps) == ("rmsnorm", "gated", "silu", "rope", 1e-5)
    assert {k: getattr(c, k) for k in expected} == expected
    assert (ours.lm_head.weight is ours.tok_embed.weight) == c.tie_weights  # tied: one Parameter
    assert isinstance(loaded.tokenizer, HfJsonTokenizer) and loaded.config["tokenizer"]["path"] == "tokenizer"
    assert_same_logits(ours, reference, atol=1e-4)
    assert_same_greedy_tokens(ours, reference)


@pytest.mark.parametrize("case", CASES)
def test_hf_to_ours_to_hf_round_trip_keeps_logits_and_tokenizer(tmp_path, case):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    arch, overrides, _ = CASES[case]
    reference = tiny_llama(tmp_path / "orig", arch, **overrides)
    convert_hf_folder(tmp_path / "orig", tmp_path / "ours")
    result = export_hf(tmp_path / "ours", tmp_path / "back")
    assert result["architecture"] == EXPORTED_CLASS[arch] and result["tokenizer"] == "hf-json"
    back = AutoModelForCausalLM.from_pretrained(str(tmp_path / "back")).eval()
    assert type(back).__name__ == EXPORTED_CLASS[arch]
    assert_same_logits(load_checkpoint(tmp_path / "ours").model, back, atol=1e-4)
    for name, tensor in reference.state_dict().items():  # the very same weights, under the same names
        torch.testing.assert_close(back.state_dict()[name], tensor, atol=0, rtol=0, msg=name)
    ours = load_checkpoint(tmp_path / "ours").tokenizer
    hf = AutoTokenizer.from_pretrained(str(tmp_path / "back"))
    assert hf(TEXT[:400], add_special_tokens=False)["input_ids"] == ours.encode(TEXT[:400])
    assert (tmp_path / "back" / "tokenizer.json").read_bytes() == (tmp_path / "orig" / "tokenizer.json").read_bytes()


@pytest.mark.parametrize("decisions, hf_class", [
    (dict(), "LlamaForCausalLM"),
    (dict(activation="relu2", attention_bias=True, tie_weights=False), "LlamaForCausalLM"),
    (dict(qkv_bias=True, rope_scaling="llama3", rope_original_context=16), "Qwen2ForCausalLM"),
    (dict(qk_norm=True, n_kv_head=1), "Qwen3ForCausalLM"),
])
def test_native_llama_style_checkpoints_export_with_equal_logits(tmp_path, tiny_model, decisions, hf_class):
    from transformers import AutoModelForCausalLM

    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer

    llama_block = dict(positional="rope", norm="rmsnorm", mlp="gated", activation="silu", n_kv_head=2, bias=False,
                       rope_base=5000.0)
    model = tiny_model(vocab_size=257, **{**llama_block, **decisions})
    with torch.no_grad():  # norms start at 1 and biases at 0: make them random, so a mapping mistake shows
        for param in model.parameters():
            if param.dim() == 1:
                param.add_(torch.randn_like(param) * 0.1)
    save_checkpoint(tmp_path / "ckpt", model, get_tokenizer("byte").spec())
    assert export_hf(tmp_path / "ckpt", tmp_path / "hf")["architecture"] == hf_class
    back = AutoModelForCausalLM.from_pretrained(str(tmp_path / "hf")).eval()
    assert type(back).__name__ == hf_class
    assert_same_logits(model, back, atol=1e-5)


def test_configurations_no_transformers_class_has_are_refused_in_one_line(tmp_path, tiny_model):
    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer

    for name, decisions, needs in [
        ("learned-rms", dict(norm="rmsnorm"), "GPT2LMHeadModel, needs LayerNorm .has rmsnorm."),
        ("sinusoidal", dict(positional="sinusoidal", norm="rmsnorm", mlp="gated", bias=False),
         "LlamaForCausalLM, needs rotary positions .has sinusoidal."),
        ("softcap", dict(positional="rope", norm="rmsnorm", mlp="gated", bias=False, logit_softcap=30.0),
         "LlamaForCausalLM, needs no logit soft cap"),
    ]:
        save_checkpoint(tmp_path / name, tiny_model(vocab_size=257, **decisions), get_tokenizer("byte").spec())
        with pytest.raises(UsageError, match=f"no transformers class has its architecture; the closest, {needs}") \
                as error:
            export_hf(tmp_path / name, tmp_path / f"{name}-out")
        assert "\n" not in str(error.value) and not (tmp_path / f"{name}-out").exists()


# config.json of the registry's models as the Hub serves them (transformers 4 style: rope_theta at the top level).
SMOLLM2_135M = {"architectures": ["LlamaForCausalLM"], "attention_bias": False, "bos_token_id": 0, "eos_token_id": 0,
                "hidden_act": "silu", "hidden_size": 576, "intermediate_size": 1536, "max_position_embeddings": 8192,
                "mlp_bias": False, "model_type": "llama", "num_attention_heads": 9, "num_hidden_layers": 30,
                "num_key_value_heads": 3, "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_interleaved": False,
                "rope_scaling": None, "rope_theta": 100000, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
                "vocab_size": 49152}
QWEN25_05B = {"architectures": ["Qwen2ForCausalLM"], "bos_token_id": 151643, "eos_token_id": 151643,
              "hidden_act": "silu", "hidden_size": 896, "intermediate_size": 4864, "max_position_embeddings": 32768,
              "max_window_layers": 24, "model_type": "qwen2", "num_attention_heads": 14, "num_hidden_layers": 24,
              "num_key_value_heads": 2, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
              "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_mrope": False,
              "use_sliding_window": False, "vocab_size": 151936}
LLAMA_31 = {"model_type": "llama", "hidden_size": 2048, "intermediate_size": 8192, "num_attention_heads": 32,
            "num_hidden_layers": 16, "num_key_value_heads": 8, "vocab_size": 128256, "rms_norm_eps": 1e-05,
            "max_position_embeddings": 131072, "rope_theta": 500000.0, "tie_word_embeddings": True,
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"}}


def test_hub_config_files_map_onto_model_config():
    from gptscratch.model import GPT
    from gptscratch.pretrained.registry import REGISTRY

    smol = ARCHITECTURES["llama"].to_config(SMOLLM2_135M)
    assert (smol.n_kv_head, smol.rope_base, smol.tie_weights, smol.context_length, smol.hidden_dim) == \
        (3, 100000.0, True, 8192, 1536)
    qwen = ARCHITECTURES["qwen2"].to_config(QWEN25_05B)
    assert (qwen.has_qkv_bias, qwen.has_attention_out_bias, qwen.has_mlp_bias, qwen.layer_norm_eps) == \
        (True, False, False, 1e-6)
    llama = ARCHITECTURES["llama"].to_config(LLAMA_31)
    assert (llama.rope_scaling, llama.rope_scaling_factor, llama.rope_original_context) == ("llama3", 32.0, 8192)
    with torch.device("meta"):
        assert GPT(smol).num_parameters() == REGISTRY["smollm2-135m"].parameters == 134_515_008
        assert GPT(qwen).num_parameters() == REGISTRY["qwen2.5-0.5b"].parameters == 494_032_768
        assert GPT(llama).num_parameters() == 1_235_814_400  # Llama 3.2 1B


@pytest.mark.parametrize("edit, message", [
    (dict(head_dim=128, hidden_size=1024, num_attention_heads=16), "has 128-wide heads but hidden_size / "
                                                                   "num_attention_heads = 1024 / 16"),
    (dict(use_sliding_window=True), "sliding-window attention"),
    (dict(rope_scaling={"rope_type": "yarn", "factor": 4.0}), "'yarn' rope scaling"),
    (dict(rope_scaling={"rope_type": "llama3", "factor": 8.0}), "lacks one of factor"),
    (dict(hidden_act="gelu_fast"), "activation 'gelu_fast' is not supported"),
])
def test_configurations_we_do_not_model_are_refused(edit, message):
    with pytest.raises(UsageError, match=message):
        ARCHITECTURES["qwen2"].to_config({**QWEN25_05B, **edit})


def _edit_config(folder, **changes):
    path = folder / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **changes}))


def test_wrong_key_value_heads_unknown_tensors_and_missing_tokenizer_fail_loudly(tmp_path):
    tiny_llama(tmp_path / "hf", "qwen2")
    _edit_config(tmp_path / "hf", num_key_value_heads=1)  # the files' k and v hold 2 heads: named, part by part
    with pytest.raises(CheckpointError, match=r"k_proj.weight has 16 rows but blocks.0.attn.qkv.weight needs 8"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")
    _edit_config(tmp_path / "hf", num_key_value_heads=2, model_type="llama")  # Llama has no q/k/v biases
    with pytest.raises(CheckpointError, match=r"has 6 tensors a llama model does not have .first: "
                                              r"model.layers.0.self_attn.k_proj.bias"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")
    _edit_config(tmp_path / "hf", model_type="qwen2")
    (tmp_path / "hf" / "tokenizer.json").unlink()
    with pytest.raises(UsageError, match="has no tokenizer.json"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_tied_head_stored_anyway_is_the_embedding_and_ignored(tmp_path):
    from safetensors.torch import load_file, save_file

    reference = tiny_llama(tmp_path / "hf", "llama", tie_word_embeddings=True)
    tensors = load_file(str(tmp_path / "hf" / "model.safetensors"))
    save_file({**tensors, "lm_head.weight": tensors["model.embed_tokens.weight"].clone()},
              str(tmp_path / "hf" / "model.safetensors"), metadata={"format": "pt"})
    convert_hf_folder(tmp_path / "hf", tmp_path / "ours")
    assert_same_logits(load_checkpoint(tmp_path / "ours").model, reference)


def test_a_long_rotary_context_is_capped_unless_asked_and_exported_back_whole(tmp_path):
    reference = tiny_llama(tmp_path / "hf", "qwen2", max_position_embeddings=32768)
    events = []
    convert_hf_folder(tmp_path / "hf", tmp_path / "capped", progress=events.append)
    capped = load_checkpoint(tmp_path / "capped")
    assert capped.model.config.context_length == 8192 and capped.model.new_kv_cache(1).max_len == 8192
    assert any("--context 32768" in e.get("message", "") for e in events)
    assert_same_logits(capped.model, reference, atol=1e-4)  # the cap changes no position below it
    convert_hf_folder(tmp_path / "hf", tmp_path / "whole", context=32768)
    assert load_checkpoint(tmp_path / "whole").model.config.context_length == 32768
    with pytest.raises(UsageError, match=r"--context must be in 1..32768"):
        convert_hf_folder(tmp_path / "hf", tmp_path / "x", context=65536)
    export_hf(tmp_path / "capped", tmp_path / "back")
    assert json.loads((tmp_path / "back" / "config.json").read_text())["max_position_embeddings"] == 32768


def test_cli_convert_generate_export(tmp_path, run_cli):
    tiny_llama(tmp_path / "hf", "llama", num_key_value_heads=1, tie_word_embeddings=False)
    (tmp_path / "hf" / "generation_config.json").write_text(json.dumps({"eos_token_id": 0, "temperature": 0.7}))
    result = run_cli("pretrained", "convert", str(tmp_path / "hf"), "--out", str(tmp_path / "ours"), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["path"] == str(tmp_path / "ours")
    generated = run_cli("generate", "--checkpoint", str(tmp_path / "ours"), "--prompt", "The quick", "--max-tokens",
                        "4", "--temperature", "0", "--json")
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["completion_tokens"] <= 4
    exported = run_cli("pretrained", "export", str(tmp_path / "ours"), str(tmp_path / "back"), "--format", "hf")
    assert exported.returncode == 0, exported.stderr
    assert json.loads((tmp_path / "back" / "config.json").read_text())["model_type"] == "llama"
    assert json.loads((tmp_path / "back" / "generation_config.json").read_text())["temperature"] == 0.7
    refused = run_cli("pretrained", "convert", str(tmp_path / "hf"), "--out", str(tmp_path / "x"), "--context", "99")
    assert refused.returncode == 2 and "--context must be in 1..64" in refused.stderr


def test_tokenizer_eos_comes_from_tokenizer_config(tmp_path):
    tiny_llama(tmp_path / "hf", "qwen2")
    make_json_tokenizer(tmp_path / "hf", eos="<|im_end|>")  # an -Instruct model's files
    convert_hf_folder(tmp_path / "hf", tmp_path / "ours")
    tokenizer = load_checkpoint(tmp_path / "ours").tokenizer
    assert tokenizer.eot_id == 2 and tokenizer.decode([2]) == "<|im_end|>"
    assert LLAMA_SHAPE["vocab_size"] >= tokenizer.vocab_size == 300
