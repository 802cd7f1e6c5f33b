"""The Llama family (`LlamaForCausalLM`: Llama 2/3, TinyLlama, SmolLM2) and its close relatives Qwen2/2.5
(`Qwen2ForCausalLM`) and Qwen3 (`Qwen3ForCausalLM`) ↔ gptscratch's GPT — one tensor table, three configs.

All three are the same block, which ModelConfig spells as:
    norm="rmsnorm", mlp="gated", activation="silu" (SwiGLU), positional="rope" with rope_base = rope_theta,
    n_kv_head = num_key_value_heads (grouped-query attention), pre-norm, sequential, no biases by default,
    tied or untied head (tie_word_embeddings), layer_norm_eps = rms_norm_eps;
and they differ only in:
    Llama   attention_bias (q/k/v and output) and mlp_bias switches; Llama 3.1+'s "llama3" rope scaling
    Qwen2   biases on q/k/v only (qkv_bias=True; none on the output projection or the MLP)
    Qwen3   QK-norm (an RMSNorm over each head's queries and keys: qk_norm=True), attention_bias switch

    ours                              theirs (HF)
    tok_embed.weight                  model.embed_tokens.weight
    blocks.{i}.ln_1.weight            model.layers.{i}.input_layernorm.weight
    blocks.{i}.attn.qkv.{weight,bias} model.layers.{i}.self_attn.{q,k,v}_proj.{weight,bias}   stacked q|k|v
    blocks.{i}.attn.q_norm.weight     model.layers.{i}.self_attn.q_norm.weight                (Qwen3; k_norm too)
    blocks.{i}.attn.proj.weight       model.layers.{i}.self_attn.o_proj.weight
    blocks.{i}.ln_2.weight            model.layers.{i}.post_attention_layernorm.weight
    blocks.{i}.mlp.{gate,up,down}     model.layers.{i}.mlp.{gate,up,down}_proj.weight
    ln_f.weight                       model.norm.weight
    lm_head.weight                    lm_head.weight                                          (untied only)

Both sides use nn.Linear's [out, in] layout and the same rotate-half rotary layout, so nothing is transposed or
permuted: q|k|v are stacked at widths (n_head·hs, n_kv·hs, n_kv·hs). Refused, with the reason: a `head_dim`
other than hidden_size / num_attention_heads (Qwen3-0.6B: 128 ≠ 1024 / 16 — our heads are d_model / n_head
wide), sliding-window layers, rope scalings other than llama3, partial rotary embeddings, Qwen2-VL's mrope.

Export: a ModelConfig with this block is written as one of the three — Qwen3 when it has QK-norm, Qwen2 when
q/k/v alone have biases, Llama otherwise (any activation transformers names, e.g. relu2, is accepted).
"""

from __future__ import annotations

from gptscratch.errors import UsageError
from gptscratch.model.config import ModelConfig

from .tensor_rules import HF_ACTIVATIONS, Architecture, Rule, activation, needs, refuse, rope_value

LLAMA3_KEYS = {"factor": "rope_scaling_factor", "low_freq_factor": "rope_low_freq_factor",
               "high_freq_factor": "rope_high_freq_factor", "original_max_position_embeddings": "rope_original_context"}


def _rope_scaling(hf: dict, kind: str) -> dict:
    """ModelConfig's rope_scaling fields from "rope_parameters" (transformers ≥ 5) or "rope_scaling" (hub files)."""
    params = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    scaling = params.get("rope_type") or params.get("type") or "default"
    if scaling == "default":
        return {}
    if scaling != "llama3":
        raise UsageError(f"this {kind} checkpoint uses {scaling!r} rope scaling, which gptscratch does not model; "
                         "only llama3 scaling (or none) can be converted")
    try:
        fields = {ours: float(params[theirs]) for theirs, ours in LLAMA3_KEYS.items()}
    except (KeyError, TypeError, ValueError):
        raise UsageError(f"this {kind} checkpoint's llama3 rope scaling lacks one of {', '.join(LLAMA3_KEYS)}; "
                         "its config.json is incomplete") from None
    fields["rope_original_context"] = int(fields["rope_original_context"])
    return {"rope_scaling": "llama3", **fields}


def _llama_like_config(hf: dict, kind: str, **decisions) -> ModelConfig:
    hidden, heads = hf["hidden_size"], hf["num_attention_heads"]
    head_dim = hf.get("head_dim")
    if hidden % heads or (head_dim is not None and head_dim != hidden // heads):
        raise UsageError(f"this {kind} checkpoint has {head_dim or hidden / heads:g}-wide heads but hidden_size / "
                         f"num_attention_heads = {hidden} / {heads}; gptscratch's heads are d_model / n_head wide, "
                         "so it cannot be converted")
    layer_types = hf.get("layer_types") or []
    refuse([(bool(hf.get("use_sliding_window")) or any(t != "full_attention" for t in layer_types),
             "sliding-window attention"),
            (rope_value(hf, "partial_rotary_factor", 1.0) != 1.0, "partial rotary embeddings"),
            (bool(hf.get("use_mrope")), "multimodal rotary embeddings (mrope)")], kind)
    kv_heads = hf.get("num_key_value_heads") or heads
    return ModelConfig(vocab_size=hf["vocab_size"], context_length=hf.get("max_position_embeddings", 2048),
                       n_layer=hf["num_hidden_layers"], n_head=heads, n_kv_head=None if kv_heads == heads else kv_heads,
                       d_model=hidden, d_ff=hf["intermediate_size"], dropout=0.0, bias=False, positional="rope",
                       rope_base=rope_value(hf, "rope_theta", 10000.0), **_rope_scaling(hf, kind), norm="rmsnorm",
                       mlp="gated", activation=activation(hf, "hidden_act", "silu"),
                       tie_weights=bool(hf.get("tie_word_embeddings", False)),
                       layer_norm_eps=hf.get("rms_norm_eps", 1e-6), **decisions)


def llama_config(hf: dict) -> ModelConfig:
    return _llama_like_config(hf, "Llama", attention_bias=bool(hf.get("attention_bias")),
                              mlp_bias=bool(hf.get("mlp_bias")))


def qwen2_config(hf: dict) -> ModelConfig:
    return _llama_like_config(hf, "Qwen2", qkv_bias=True, attention_bias=False, mlp_bias=False)


def qwen3_config(hf: dict) -> ModelConfig:
    return _llama_like_config(hf, "Qwen3", attention_bias=bool(hf.get("attention_bias")), mlp_bias=False,
                              qk_norm=True)


def llama_rules(config: ModelConfig) -> list[Rule]:
    layer, attn = "model.layers.{i}", "model.layers.{i}.self_attn"
    rules = [Rule("tok_embed.weight", ("model.embed_tokens.weight",)),
             Rule("blocks.{i}.ln_1.weight", (f"{layer}.input_layernorm.weight",))]
    kinds = ("weight", "bias") if config.has_qkv_bias else ("weight",)
    rules += [Rule(f"blocks.{{i}}.attn.qkv.{k}", tuple(f"{attn}.{p}_proj.{k}" for p in "qkv")) for k in kinds]
    if config.qk_norm:
        rules += [Rule(f"blocks.{{i}}.attn.{n}.weight", (f"{attn}.{n}.weight",)) for n in ("q_norm", "k_norm")]
    kinds = ("weight", "bias") if config.has_attention_out_bias else ("weight",)
    rules += [Rule(f"blocks.{{i}}.attn.proj.{k}", (f"{attn}.o_proj.{k}",)) for k in kinds]
    rules.append(Rule("blocks.{i}.ln_2.weight", (f"{layer}.post_attention_layernorm.weight",)))
    kinds = ("weight", "bias") if config.has_mlp_bias else ("weight",)
    rules += [Rule(f"blocks.{{i}}.mlp.{p}.{k}", (f"{layer}.mlp.{p}_proj.{k}",))
              for p in ("gate", "up", "down") for k in kinds]
    rules.append(Rule("ln_f.weight", ("model.norm.weight",)))
    if not config.tie_weights:
        rules.append(Rule("lm_head.weight", ("lm_head.weight",)))
    return rules


def _block_checks(config: ModelConfig) -> list[tuple[bool, str]]:
    """What all three classes need: the Llama block (module docstring)."""
    return [(config.positional == "rope", f"rotary positions (has {config.positional})"),
            (config.rotary_fraction == 1.0, "rotation of whole heads (has partial RoPE)"),
            (config.norm == "rmsnorm", f"RMSNorm (has {config.norm})"),
            (config.norm_placement == "pre", "pre-norm (has post)"),
            (config.block_layout == "sequential", f"sequential blocks (has {config.block_layout})"),
            (config.mlp == "gated" and not config.attention_only, "a gated MLP"),
            (not config.scale_embeddings, "unscaled embeddings"), (not config.lm_head_bias, "no LM-head bias"),
            (config.logit_softcap is None, "no logit soft cap"),
            (config.activation in HF_ACTIVATIONS, f"a transformers activation (has {config.activation})")]


def _same_attention_biases(config: ModelConfig) -> tuple[bool, str]:
    return (config.has_qkv_bias == config.has_attention_out_bias,
            "one bias switch for q/k/v and the output projection")


def llama_export_problems(config: ModelConfig) -> list[str]:
    return needs([*_block_checks(config), (not config.qk_norm, "no QK-norm"), _same_attention_biases(config)])


def qwen2_export_problems(config: ModelConfig) -> list[str]:
    return needs([*_block_checks(config), (not config.qk_norm, "no QK-norm"),
                  (config.has_qkv_bias and not config.has_attention_out_bias and not config.has_mlp_bias,
                   "biases on q/k/v only")])


def qwen3_export_problems(config: ModelConfig) -> list[str]:
    return needs([*_block_checks(config), (config.qk_norm, "QK-norm"), _same_attention_biases(config),
                  (not config.has_mlp_bias, "no MLP biases")])


def _block_hf_config(config: ModelConfig) -> dict:
    scaling = None
    if config.rope_scaling == "llama3":
        scaling = {"rope_type": "llama3", **{theirs: getattr(config, ours) for theirs, ours in LLAMA3_KEYS.items()}}
    return {"hidden_size": config.d_model, "intermediate_size": config.hidden_dim,
            "num_hidden_layers": config.n_layer, "num_attention_heads": config.n_head,
            "num_key_value_heads": config.kv_heads, "max_position_embeddings": config.context_length,
            "hidden_act": HF_ACTIVATIONS[config.activation], "rms_norm_eps": config.layer_norm_eps,
            "rope_theta": config.rope_base, "rope_scaling": scaling, "attention_dropout": config.dropout,
            "initializer_range": 0.02}


def llama_hf_config(config: ModelConfig) -> dict:
    return {**_block_hf_config(config), "head_dim": config.head_dim, "attention_bias": config.has_qkv_bias,
            "mlp_bias": config.has_mlp_bias}


def qwen2_hf_config(config: ModelConfig) -> dict:
    return {**_block_hf_config(config), "use_sliding_window": False, "sliding_window": None,
            "max_window_layers": config.n_layer}


def qwen3_hf_config(config: ModelConfig) -> dict:
    return {**_block_hf_config(config), "head_dim": config.head_dim, "attention_bias": config.has_qkv_bias,
            "use_sliding_window": False, "sliding_window": None, "max_window_layers": config.n_layer}


_BUFFERS = (r"rotary_emb\.inv_freq$",)
LLAMA = Architecture("llama", "LlamaForCausalLM", llama_config, llama_rules, llama_export_problems, llama_hf_config,
                     ignore=_BUFFERS, tokenizer="hf-json")
QWEN2 = Architecture("qwen2", "Qwen2ForCausalLM", qwen2_config, llama_rules, qwen2_export_problems, qwen2_hf_config,
                     ignore=_BUFFERS, tokenizer="hf-json")
QWEN3 = Architecture("qwen3", "Qwen3ForCausalLM", qwen3_config, llama_rules, qwen3_export_problems, qwen3_hf_config,
                     ignore=_BUFFERS, tokenizer="hf-json")
