"""OpenAI GPT-2 (`GPT2LMHeadModel`) ↔ gptscratch's GPT: the config mapping and the tensor table.

GPT-2 → ModelConfig: learned positions, pre-LayerNorm, sequential blocks, biases everywhere, gelu_tanh
("gelu_new"), the LM head tied to the token embedding (stored once).

GPT-2 uses `Conv1D` layers whose weight is stored [in, out] — the transpose of nn.Linear's [out, in] — and
already fuses q|k|v on the output dimension, which is exactly our `attn.qkv` row order; everything else is a
rename. Hub files hold the causal-mask buffers `h.{i}.attn.bias` / `attn.masked_bias` next to the weights and
lack the `transformer.` prefix `save_pretrained` writes; both are accepted.

Export: any ModelConfig with exactly GPT-2's decisions is written back as GPT2LMHeadModel (the activation may be
any transformers knows by name, e.g. relu or silu).
"""

from __future__ import annotations

from gptscratch.model.config import ModelConfig

from .tensor_rules import HF_ACTIVATIONS, Architecture, Rule, activation, needs, refuse


def gpt2_config(hf: dict) -> ModelConfig:
    refuse([(hf.get("scale_attn_weights") is False, "unscaled attention"),
            (bool(hf.get("scale_attn_by_inverse_layer_idx")), "scale_attn_by_inverse_layer_idx"),
            (bool(hf.get("add_cross_attention")), "cross-attention")], "GPT-2")
    return ModelConfig(vocab_size=hf["vocab_size"], context_length=hf.get("n_positions", 1024),
                       n_layer=hf["n_layer"], n_head=hf["n_head"], d_model=hf["n_embd"], d_ff=hf.get("n_inner"),
                       dropout=0.0, bias=True, positional="learned", norm_placement="pre",
                       activation=activation(hf, "activation_function", "gelu_new"),
                       tie_weights=hf.get("tie_word_embeddings", True),
                       layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5))


def gpt2_rules(config: ModelConfig) -> list[Rule]:
    rules = [Rule("tok_embed.weight", ("wte.weight",)), Rule("pos_embed.table.weight", ("wpe.weight",))]
    for ours, theirs, transpose in [("ln_1", "ln_1", False), ("attn.qkv", "attn.c_attn", True),
                                    ("attn.proj", "attn.c_proj", True), ("ln_2", "ln_2", False),
                                    ("mlp.up", "mlp.c_fc", True), ("mlp.down", "mlp.c_proj", True)]:
        rules.append(Rule(f"blocks.{{i}}.{ours}.weight", (f"h.{{i}}.{theirs}.weight",), transpose))
        rules.append(Rule(f"blocks.{{i}}.{ours}.bias", (f"h.{{i}}.{theirs}.bias",)))
    rules += [Rule("ln_f.weight", ("ln_f.weight",)), Rule("ln_f.bias", ("ln_f.bias",))]
    if not config.tie_weights:
        rules.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return rules


def gpt2_export_problems(config: ModelConfig) -> list[str]:
    """Why a ModelConfig cannot be written as HF GPT-2 (empty when it can)."""
    return needs([
        (config.positional == "learned", f"learned positions (has {config.positional})"),
        (config.norm == "layernorm", f"LayerNorm (has {config.norm})"),
        (config.norm_placement == "pre", "pre-LayerNorm (has post)"),
        (config.block_layout == "sequential", f"sequential blocks (has {config.block_layout})"),
        (config.mlp == "standard", f"a standard MLP (has {config.mlp})"),
        (not config.attention_only, "an MLP in every block (is attention-only)"),
        (config.kv_heads == config.n_head, "one key/value head per query head (has grouped-query attention)"),
        (not config.qk_norm, "no QK-norm"),
        (config.bias and config.has_qkv_bias and config.has_attention_out_bias and config.has_mlp_bias,
         "biases everywhere (has none or only some)"),
        (not config.scale_embeddings, "unscaled embeddings"), (not config.lm_head_bias, "no LM-head bias"),
        (config.logit_softcap is None, "no logit soft cap"),
        (config.activation in HF_ACTIVATIONS, f"a transformers activation (has {config.activation})")])


def gpt2_hf_config(config: ModelConfig) -> dict:
    return {"n_positions": config.context_length, "n_embd": config.d_model, "n_layer": config.n_layer,
            "n_head": config.n_head, "n_inner": config.d_ff, "activation_function": HF_ACTIVATIONS[config.activation],
            "layer_norm_epsilon": config.layer_norm_eps, "resid_pdrop": config.dropout, "embd_pdrop": config.dropout,
            "attn_pdrop": config.dropout, "scale_attn_weights": True, "initializer_range": 0.02}


GPT2 = Architecture("gpt2", "GPT2LMHeadModel", gpt2_config, gpt2_rules, gpt2_export_problems, gpt2_hf_config,
                    ignore=(r"^h\.\d+\.attn\.(masked_)?bias$",), strip_prefix="transformer.")
