"""ModelConfig: every architectural decision of the GPT as one named field.

Why a config object and not constructor arguments scattered over classes? Because a transformer is a handful
of choices — how positions enter, where the norm sits, which non-linearity, whether the output layer shares the
embedding matrix — and a learner should be able to flip one and retrain (an ablation), while the pretrained
converters map GPT-2 and Phi-2 onto the same model by setting these fields (litgpt's "one model class, each
family a configuration").

This module is the one source of truth for them: every field is a `gptscratch train` flag (`--norm-placement
post`, `--no-bias`, ...) whose help text is the field's docstring below, and a key a recipe file may set — both
derived from the dataclass, so a new field needs no edit anywhere else. It imports nothing but the standard
library, so the command line can read it without loading torch.

Shapes used throughout the package:
    batch B, sequence T, model width d_model (C), heads n_head (nh), head width head_dim = d_model / n_head (hs),
    feed-forward width d_ff (4 × d_model by default), vocabulary V.

Parameter count (tied, learned positions, bias on, L layers, width d, hidden f, vocab V, context N):
    embeddings  V·d + N·d
    per block   attention 4d² + 4d  (qkv: 3d² + 3d, output: d² + d)
                MLP       2·d·f + f + d
                2 LayerNorms 4d
    final norm  2d
and how each decision changes it: grouped-query attention shrinks qkv to d·(nh + 2·n_kv)·hs; a gated MLP has a
third d·f matrix; RMSNorm has no bias (d per norm); QK-norm adds two norms of width hs per block; untied weights
add V·d. The test suite checks GPT.num_parameters() against this formula for every named size and variant.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

POSITIONAL_KINDS = ("learned", "sinusoidal", "rope")
NORM_PLACEMENTS = ("pre", "post")
NORMS = ("layernorm", "rmsnorm")
ACTIVATIONS = ("gelu", "gelu_tanh", "relu", "silu", "relu2")
MLPS = ("standard", "gated")
BLOCK_LAYOUTS = ("sequential", "parallel")
ROPE_SCALINGS = ("none", "llama3")

# The fields whose value is one of a fixed set of names.
CHOICES: dict[str, tuple[str, ...]] = {"positional": POSITIONAL_KINDS, "norm_placement": NORM_PLACEMENTS,
                                       "norm": NORMS, "activation": ACTIVATIONS, "mlp": MLPS,
                                       "block_layout": BLOCK_LAYOUTS, "rope_scaling": ROPE_SCALINGS}


@dataclass(frozen=True)
class ModelConfig:
    """Every architectural decision of the model (module docstring); frozen, so a config is a value."""

    vocab_size: int = 50304
    """Rows of the embedding / columns of the output layer. Often padded to a multiple of 64 for speed."""
    context_length: int = 256
    """Longest sequence the model attends over (GPT-2: 1024). Learned positions have one row per position."""
    n_layer: int = 6
    """Transformer blocks stacked on the residual stream (GPT-2 small: 12)."""
    n_head: int = 4
    """Attention heads per block; d_model must divide evenly among them (head width = d_model / n_head)."""
    n_kv_head: int | None = None
    """Key/value heads (grouped-query attention, attention.py): None = n_head; 1 = multi-query; must divide n_head."""
    qk_norm: bool = False
    """Normalise each head's queries and keys (the model's norm over head width) before attention (Qwen3)."""
    d_model: int = 256
    """Width of the residual stream: every token is a vector of this many numbers (GPT-2 small: 768)."""
    d_ff: int | None = None
    """Hidden width of the feed-forward net; None means 4 × d_model (as in GPT-2)."""
    dropout: float = 0.0
    """Probability of zeroing activations during training (embeddings, attention weights, sub-layer outputs)."""
    bias: bool = True
    """Biases in every Linear and LayerNorm (GPT-2: yes; many modern models: no)."""
    attention_bias: bool | None = None
    """Biases in attention's projections (q/k/v and output); None = follow --bias."""
    qkv_bias: bool | None = None
    """Biases on the query/key/value projection alone; None = follow attention_bias (Qwen2: yes, with no others)."""
    mlp_bias: bool | None = None
    """Biases in the MLP's projections; None = follow --bias."""
    positional: str = "learned"
    """How the model knows token order: 'learned' table, fixed 'sinusoidal' table, or 'rope' (rotary)."""
    rotary_fraction: float = 1.0
    """With rope: the fraction of each head's dimensions that are rotated (Phi-2: 0.4, 'partial RoPE')."""
    rope_base: float = 10000.0
    """With rope: θ_i = base^(−2i/r); a larger base turns slower, reaching further (Llama 3: 500000)."""
    rope_scaling: str = "none"
    """With rope: 'llama3' stretches the slow frequencies for a longer context, as Llama 3.1+ checkpoints do."""
    rope_scaling_factor: float = 8.0
    """With llama3 scaling: how much the slowest frequencies are divided by."""
    rope_low_freq_factor: float = 1.0
    """With llama3 scaling: wavelengths above original context / this are divided by the factor."""
    rope_high_freq_factor: float = 4.0
    """With llama3 scaling: wavelengths below original context / this are kept; in between, interpolated."""
    rope_original_context: int = 8192
    """With llama3 scaling: the context length the model was first trained on."""
    norm_placement: str = "pre"
    """'pre': x + f(LN(x)) (GPT-2, trains stably); 'post': LN(x + f(x)) (the original 2017 transformer)."""
    norm: str = "layernorm"
    """'layernorm' (centre and scale; GPT-2) or 'rmsnorm' (scale only, no bias; Llama, Qwen)."""
    activation: str = "gelu"
    """'gelu' (exact erf form), 'gelu_tanh' (GPT-2's 'gelu_new'), 'relu', 'silu' (x·σ(x)) or 'relu2' (relu(x)²)."""
    mlp: str = "standard"
    """'standard': down(act(up(x))); 'gated': down(act(gate(x)) ⊙ up(x)) — with silu, SwiGLU (Llama, Qwen)."""
    tie_weights: bool = True
    """Output projection shares the token-embedding tensor (one Parameter, not a copy)."""
    scale_embeddings: bool = False
    """Multiply token embeddings by √d_model (as in the 2017 transformer); GPT-2 does not."""
    block_layout: str = "sequential"
    """'sequential': attention then MLP; 'parallel': both read one normalised input (GPT-J, Phi-2)."""
    attention_only: bool = False
    """Blocks without the MLP: the smallest models in which circuits such as induction heads are studied."""
    lm_head_bias: bool = False
    """A bias on the output projection (Phi-2 has one; only possible when weights are untied)."""
    logit_softcap: float | None = None
    """Squash the logits into (−c, c) with c·tanh(z / c) (Gemma 2, modded-nanogpt); None = off."""
    layer_norm_eps: float = 1e-5
    """The ε of every norm: (x − mean) / √(var + ε), so a constant row does not divide by zero."""

    def __post_init__(self) -> None:
        checks = [
            (self.positional in POSITIONAL_KINDS, f"positional must be one of {POSITIONAL_KINDS}"),
            (self.norm_placement in NORM_PLACEMENTS, f"norm_placement must be one of {NORM_PLACEMENTS}"),
            (self.activation in ACTIVATIONS, f"activation must be one of {ACTIVATIONS}"),
            (self.block_layout in BLOCK_LAYOUTS, f"block_layout must be one of {BLOCK_LAYOUTS}"),
            (self.d_model % self.n_head == 0, "d_model must be divisible by n_head"),
            (min(self.vocab_size, self.context_length, self.n_layer, self.n_head) > 0, "sizes must be positive"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (0.0 < self.rotary_fraction <= 1.0, "rotary_fraction must be in (0, 1]"),
            (not (self.tie_weights and self.lm_head_bias), "lm_head_bias needs tie_weights=False"),
            (not (self.block_layout == "parallel" and self.norm_placement == "post"),
             "the parallel layout is defined for pre-norm only"),
            (self.norm in NORMS, f"norm must be one of {NORMS}"),
            (self.mlp in MLPS, f"mlp must be one of {MLPS}"),
            (self.rope_scaling in ROPE_SCALINGS, f"rope_scaling must be one of {ROPE_SCALINGS}"),
            (self.n_kv_head is None or (self.n_kv_head > 0 and self.n_head % self.n_kv_head == 0),
             "n_kv_head must divide n_head"),
            (self.logit_softcap is None or self.logit_softcap > 0, "logit_softcap must be positive"),
            (self.rope_high_freq_factor > self.rope_low_freq_factor > 0,
             "rope_high_freq_factor must exceed rope_low_freq_factor, and both be positive"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        if self.positional == "rope" and self.rotary_dims % 2:
            raise ValueError("rope needs an even number of rotary dimensions per head")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    @property
    def kv_heads(self) -> int:
        """Key/value heads: n_kv_head, or n_head when every query head has its own."""
        return self.n_kv_head if self.n_kv_head is not None else self.n_head

    @property
    def has_qkv_bias(self) -> bool:
        return next(b for b in (self.qkv_bias, self.attention_bias, self.bias) if b is not None)

    @property
    def has_attention_out_bias(self) -> bool:
        return next(b for b in (self.attention_bias, self.bias) if b is not None)

    @property
    def has_mlp_bias(self) -> bool:
        return next(b for b in (self.mlp_bias, self.bias) if b is not None)

    @property
    def hidden_dim(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def rotary_dims(self) -> int:
        return int(self.head_dim * self.rotary_fraction)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**data)

    def replace(self, **changes) -> "ModelConfig":
        return replace(self, **changes)


# Named shapes. Vocabulary size comes from the tokenizer, so it is not part of a size.
SIZES: dict[str, dict] = {
    # For tests and first experiments: trains in seconds on a CPU.
    "tiny": dict(n_layer=2, n_head=2, d_model=64, context_length=64),
    # nanoGPT's CPU "baby GPT" shape.
    "mini": dict(n_layer=4, n_head=4, d_model=128, context_length=128),
    # The default shape of the seed project: 6 layers × 256 wide × 4 heads.
    "small": dict(n_layer=6, n_head=4, d_model=256, context_length=256),
    "medium": dict(n_layer=8, n_head=8, d_model=512, context_length=512),
    # GPT-2 124M: 12 layers × 768 × 12 heads, context 1024 (with vocab 50257 → 124,439,808 parameters).
    "gpt2": dict(n_layer=12, n_head=12, d_model=768, context_length=1024, activation="gelu_tanh"),
}


def pad_vocab(vocab_size: int, multiple: int = 64) -> int:
    """Round the vocabulary up so the output matmul has friendly shapes (nanoGPT: 50257 → 50304)."""
    return ((vocab_size + multiple - 1) // multiple) * multiple


def model_config(size: str, vocab_size: int, **overrides) -> ModelConfig:
    """The ModelConfig of a named size, with a vocabulary and any field overridden."""
    if size not in SIZES:
        raise KeyError(f"unknown model size {size!r}; choose one of {', '.join(SIZES)}")
    return ModelConfig(vocab_size=vocab_size, **{**SIZES[size], **overrides})


@functools.cache
def field_docs() -> dict[str, str]:
    """{field name: the docstring written under it in ModelConfig} — the help text of each `train` flag.

    Read from this file's source (attribute docstrings are not kept at run time); {} if it is unavailable."""
    try:
        tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    body = next(node.body for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "ModelConfig")
    docs = {}
    for node, following in zip(body, body[1:]):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr) \
                and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str):
            docs[node.target.id] = " ".join(following.value.value.split())
    return docs
