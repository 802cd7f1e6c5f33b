"""Microsoft Phi-1/1.5/2 (`PhiForCausalLM`) ↔ gptscratch's GPT: the config mapping and the tensor table.

Phi → ModelConfig: rotary positions on a fraction (partial_rotary_factor; Phi-2: 0.4) of each head, one
LayerNorm feeding attention and MLP in parallel, biases everywhere, an untied LM head with a bias, gelu_tanh.
Phi keeps separate q/k/v projections, which we stack into `attn.qkv`; everything else is a rename.

Export: a ModelConfig with exactly these decisions is written back as PhiForCausalLM.
"""

from __future__ import annotations

from gptscratch.model.config import ModelConfig

from .tensor_rules import HF_ACTIVATIONS, Architecture, Rule, activation, needs, refuse, rope_value


def phi_config(hf: dict) -> ModelConfig:
    heads = hf["num_attention_heads"]
    rope_type = (hf.get("rope_parameters") or {}).get("rope_type", "default")
    refuse([(bool(hf.get("qk_layernorm")), "qk_layernorm"),
            (bool(hf.get("rope_scaling")) or rope_type != "default", "scaled rotary embeddings"),
            (bool(hf.get("tie_word_embeddings")), "a tied LM head")], "Phi")
    return ModelConfig(vocab_size=hf["vocab_size"], context_length=hf.get("max_position_embeddings", 2048),
                       n_layer=hf["num_hidden_layers"], n_head=heads, n_kv_head=hf.get("num_key_value_heads"),
                       d_model=hf["hidden_size"], d_ff=hf.get("intermediate_size"), dropout=0.0, bias=True,
                       positional="rope", rotary_fraction=rope_value(hf, "partial_rotary_factor", 0.5),
                       rope_base=rope_value(hf, "rope_theta", 10000.0), block_layout="parallel",
                       activation=activation(hf, "hidden_act", "gelu_new"), tie_weights=False, lm_head_bias=True,
                       layer_norm_eps=hf.get("layer_norm_eps", 1e-5))


def phi_rules(config: ModelConfig) -> list[Rule]:
    layer = "model.layers.{i}"
    rules = [Rule("tok_embed.weight", ("model.embed_tokens.weight",))]
    for kind in ("weight", "bias"):
        rules += [
            Rule(f"blocks.{{i}}.ln_1.{kind}", (f"{layer}.input_layernorm.{kind}",)),
            Rule(f"blocks.{{i}}.attn.qkv.{kind}", tuple(f"{layer}.self_attn.{p}_proj.{kind}" for p in "qkv")),
            Rule(f"blocks.{{i}}.attn.proj.{kind}", (f"{layer}.self_attn.dense.{kind}",)),
            Rule(f"blocks.{{i}}.mlp.up.{kind}", (f"{layer}.mlp.fc1.{kind}",)),
            Rule(f"blocks.{{i}}.mlp.down.{kind}", (f"{layer}.mlp.fc2.{kind}",)),
        ]
    rules += [Rule(f"ln_f.{kind}", (f"model.final_layernorm.{kind}",)) for kind in ("weight", "bias")]
    rules += [Rule(f"lm_head.{kind}", (f"lm_head.{kind}",)) for kind in ("weight", "bias")]
    return rules


def phi_export_problems(config: ModelConfig) -> list[str]:
    """Why a ModelConfig cannot be written as HF Phi (empty when it can)."""
    return needs([
        (config.positional == "rope" and config.rope_scaling == "none", "unscaled rotary positions"),
        (config.norm == "layernorm", f"LayerNorm (has {config.norm})"),
        (config.block_layout == "parallel", f"parallel blocks (has {config.block_layout})"),
        (config.mlp == "standard" and not config.attention_only, "a standard MLP"),
        (not config.qk_norm, "no QK-norm"),
        (config.bias and config.has_qkv_bias and config.has_attention_out_bias and config.has_mlp_bias,
         "biases everywhere"),
        (not config.tie_weights and config.lm_head_bias, "an untied LM head with a bias"),
        (not config.scale_embeddings, "unscaled embeddings"), (config.logit_softcap is None, "no logit soft cap"),
        (config.activation in HF_ACTIVATIONS, f"a transformers activation (has {config.activation})")])


def phi_hf_config(config: ModelConfig) -> dict:
    return {"hidden_size": config.d_model, "intermediate_size": config.hidden_dim, "num_hidden_layers": config.n_layer,
            "num_attention_heads": config.n_head, "num_key_value_heads": config.kv_heads,
            "max_position_embeddings": config.context_length, "hidden_act": HF_ACTIVATIONS[config.activation],
            "layer_norm_eps": config.layer_norm_eps, "rope_theta": config.rope_base,
            "partial_rotary_factor": config.rotary_fraction, "qk_layernorm": False, "resid_pdrop": config.dropout,
            "embd_pdrop": config.dropout, "attention_dropout": config.dropout, "initializer_range": 0.02}


PHI = Architecture("phi", "PhiForCausalLM", phi_config, phi_rules, phi_export_problems, phi_hf_config,
                   ignore=(r"rotary_emb\.inv_freq$",))
