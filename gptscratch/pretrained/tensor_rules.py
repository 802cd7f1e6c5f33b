"""What a supported architecture is, as data: a config mapping and a table of tensor names, used both ways.

Each family module (gpt2.py, phi.py, llama.py) describes itself with one `Architecture`:

    to_config        HF config.json → ModelConfig (refusing, with the reason, what our model cannot express)
    rules            one `Rule` per tensor of our model, `{i}` standing for the layer index:

        ours                           theirs (HF)                                      transform
        blocks.{i}.attn.qkv.weight     h.{i}.attn.c_attn.weight                         transpose (GPT-2's Conv1D)
        blocks.{i}.attn.qkv.weight     model.layers.{i}.self_attn.{q,k,v}_proj.weight   stack q|k|v (dim 0)

    export_problems  ModelConfig → why it cannot be written as this class (empty: it can)
    to_hf_config     ModelConfig → the HF config.json fields of this class

convert.py runs the table forwards (HF folder → checkpoint), export.py backwards (checkpoint → HF folder): a
transposed tensor is transposed back, a stacked q|k|v is split at the widths `stacked_widths` gives. Nothing
else differs between families, so adding one is a new module and a line in architectures.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from gptscratch.errors import UsageError
from gptscratch.model.config import ModelConfig

# HF `hidden_act` / `activation_function` → ModelConfig.activation ("gelu_new" and "gelu_pytorch_tanh" are both
# the tanh approximation; "swish" is SiLU). HF_ACTIVATIONS goes back: every transformers class reads these names.
ACTIVATIONS = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu",
               "silu": "silu", "swish": "silu", "relu2": "relu2"}
HF_ACTIVATIONS = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu", "silu": "silu", "relu2": "relu2"}


@dataclass(frozen=True)
class Rule:
    ours: str
    theirs: tuple[str, ...]        # several: stacked along dim 0 in this order (q|k|v)
    transpose: bool = False


@dataclass(frozen=True)
class Architecture:
    name: str                      # HF model_type
    hf_class: str
    to_config: Callable[[dict], ModelConfig]
    rules: Callable[[ModelConfig], list[Rule]]
    export_problems: Callable[[ModelConfig], list[str]]
    to_hf_config: Callable[[ModelConfig], dict]
    ignore: tuple[str, ...] = ()   # regexes of HF tensors that are buffers, not weights
    strip_prefix: str = ""         # save_pretrained adds it (GPT-2: "transformer."), hub files may not
    tokenizer: str = "hf-bpe"      # the tokenizer files its repos ship: "hf-bpe" (vocab.json + merges.txt), "hf-json"

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


def stacked_widths(config: ModelConfig, parts: int) -> tuple[int, ...]:
    """The dim-0 widths of the tensors a rule stacks: q|k|v = (n_head·hs, n_kv·hs, n_kv·hs) (attention.py)."""
    if parts != 3:
        raise ValueError(f"only q|k|v (3 parts) are stacked, not {parts}")
    return (config.n_head * config.head_dim, config.kv_heads * config.head_dim, config.kv_heads * config.head_dim)


def activation(hf: dict, key: str, default: str) -> str:
    """ModelConfig.activation for the HF activation named under `key`, or a UsageError naming the supported."""
    value = hf.get(key) or default
    if value not in ACTIVATIONS:
        raise UsageError(f"activation {value!r} is not supported; gptscratch models {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[value]


def refuse(conditions: list[tuple[bool, str]], kind: str) -> None:
    """UsageError for the first condition that holds: `(bad, what)` → "this {kind} checkpoint uses {what} ..."."""
    for bad, what in conditions:
        if bad:
            raise UsageError(f"this {kind} checkpoint uses {what}, which gptscratch does not model; only standard "
                             f"{kind} configurations can be converted")


def rope_value(hf: dict, key: str, default: float) -> float:
    """A rotary setting: transformers ≥ 5 nests them in "rope_parameters", hub files keep them at the top level."""
    nested = hf.get("rope_parameters") or {}
    return float(nested.get(key, hf.get(key, default)) or default)


def needs(checks: list[tuple[bool, str]]) -> list[str]:
    """The descriptions of the checks that fail: `export_problems` is a list of `(ok, what it needs)`."""
    return [needed for ok, needed in checks if not ok]
