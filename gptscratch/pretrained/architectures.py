"""How Hugging Face GPT-2 and Phi models map onto gptscratch's GPT: config fields and a table of tensor names.

Each supported architecture is data, not code: a function turning the HF config.json into a ModelConfig, and
a table of rules, one per tensor, with `{i}` standing for the layer index:

    ours                               theirs (HF)                                    transform
    blocks.{i}.attn.qkv.weight         h.{i}.attn.c_attn.weight                        transpose (Conv1D)
    blocks.{i}.attn.qkv.weight         model.layers.{i}.self_attn.{q,k,v}_proj.weight  concatenate q|k|v (dim 0)

GPT-2 uses `Conv1D` layers whose weight is stored [in, out] — the transpose of nn.Linear's [out, in] — and
already fuses q|k|v on the output dimension, which is exactly our `attn.qkv` row order. Phi-2 keeps separate
q/k/v projections, which we stack. Everything else is a rename. Tensors that are buffers rather than weights
(GPT-2's causal mask `attn.bias` / `attn.masked_bias` in old files, a rotary `inv_freq`) are ignored; any
other tensor the table does not know is an error — an unknown tensor means an architecture we do not model.

GPT-2 → ModelConfig: learned positions, pre-LN, sequential block, biases, gelu_tanh ("gelu_new"), tied head.
Phi-2 → ModelConfig: rotary positions on a fraction (partial_rotary_factor, 0.4) of each head, one LayerNorm
feeding attention and MLP in parallel, biases everywhere, untied LM head with a bias, gelu_tanh.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gptscratch.errors import UsageError
from gptscratch.model.config import ModelConfig

ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}


@dataclass(frozen=True)
class Rule:
    ours: str
    theirs: tuple[str, ...]
    transpose: bool = False


@dataclass(frozen=True)
class Architecture:
    name: str
    hf_class: str
    to_config: Callable[[dict], ModelConfig]
    rules: Callable[[ModelConfig], list[Rule]]
    ignore: tuple[str, ...]        # regexes of HF tensors that are buffers, not weights
    strip_prefix: str = ""         # save_pretrained adds it (GPT-2: "transformer."), hub files may not

    def expanded_rules(self, config: ModelConfig) -> list[Rule]:
        """The rules with {i} replaced by every layer index, in our state-dict order."""
        out = []
        for rule in self.rules(config):
            layers = range(config.n_layer) if "{i}" in rule.ours else [None]
            for i in layers:
                out.append(Rule(rule.ours.format(i=i), tuple(t.format(i=i) for t in rule.theirs), rule.transpose))
        return out

    def ignored(self, name: str) -> bool:
        return any(re.search(pattern, name) for pattern in self.ignore)


def _activation(hf: dict, key: str) -> str:
    value = hf.get(key, "gelu_new")
    if value not in ACTIVATIONS:
        raise UsageError(f"activation {value!r} is not supported; gptscratch models {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[value]


def _refuse(conditions: list[tuple[bool, str]], kind: str) -> None:
    for bad, what in conditions:
        if bad:
            raise UsageError(f"this {kind} checkpoint uses {what}, which gptscratch does not model; only standard "
                             f"{kind} configurations can be converted")


def gpt2_config(hf: dict) -> ModelConfig:
    _refuse([(hf.get("scale_attn_weights") is False, "unscaled attention"),
             (bool(hf.get("scale_attn_by_inverse_layer_idx")), "scale_attn_by_inverse_layer_idx"),
             (bool(hf.get("add_cross_attention")), "cross-attention")], "GPT-2")
    return ModelConfig(vocab_size=hf["vocab_size"], context_length=hf.get("n_positions", 1024),
                       n_layer=hf["n_layer"], n_head=hf["n_head"], d_model=hf["n_embd"], d_ff=hf.get("n_inner"),
                       dropout=0.0, bias=True, positional="learned", norm_placement="pre",
                       activation=_activation(hf, "activation_function"),
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


def _rope_value(hf: dict, key: str, default: float) -> float:
    # transformers ≥ 5 nests rotary settings in "rope_parameters"; the Phi-2 hub file has them at the top level.
    nested = hf.get("rope_parameters") or {}
    return float(nested.get(key, hf.get(key, default)) or default)


def phi_config(hf: dict) -> ModelConfig:
    heads = hf["num_attention_heads"]
    rope_type = (hf.get("rope_parameters") or {}).get("rope_type", "default")
    _refuse([(hf.get("num_key_value_heads") not in (None, heads), "grouped-query attention"),
             (bool(hf.get("qk_layernorm")), "qk_layernorm"),
             (bool(hf.get("rope_scaling")) or rope_type != "default", "scaled rotary embeddings"),
             (bool(hf.get("tie_word_embeddings")), "a tied LM head")], "Phi")
    return ModelConfig(vocab_size=hf["vocab_size"], context_length=hf.get("max_position_embeddings", 2048),
                       n_layer=hf["num_hidden_layers"], n_head=heads, d_model=hf["hidden_size"],
                       d_ff=hf.get("intermediate_size"), dropout=0.0, bias=True, positional="rope",
                       rotary_fraction=_rope_value(hf, "partial_rotary_factor", 0.5),
                       rope_base=_rope_value(hf, "rope_theta", 10000.0), block_layout="parallel",
                       activation=_activation(hf, "hidden_act"), tie_weights=False, lm_head_bias=True,
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


ARCHITECTURES: dict[str, Architecture] = {
    "gpt2": Architecture("gpt2", "GPT2LMHeadModel", gpt2_config, gpt2_rules,
                         ignore=(r"^h\.\d+\.attn\.(masked_)?bias$", r"^lm_head\.weight$"),
                         strip_prefix="transformer."),
    "phi": Architecture("phi", "PhiForCausalLM", phi_config, phi_rules, ignore=(r"rotary_emb\.inv_freq$",)),
}


def architecture_for(hf_config: dict, where: str) -> Architecture:
    """The Architecture of an HF config.json, or a UsageError naming what is supported."""
    model_type = hf_config.get("model_type")
    if model_type not in ARCHITECTURES:
        supported = ", ".join(f"{a.name} ({a.hf_class})" for a in ARCHITECTURES.values())
        raise UsageError(f"{where} is a {model_type or 'unknown'} model "
                         f"({', '.join(hf_config.get('architectures') or ['no architectures listed'])}); "
                         f"gptscratch converts only {supported}")
    return ARCHITECTURES[model_type]
