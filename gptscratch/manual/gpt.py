"""The whole GPT with every layer's backward pass written out: the model's own code, computed with this
package's Functions.

`forward(model, idx, targets)` runs the ordinary `gptscratch.model.GPT` — its forward, its blocks, its wiring —
with the kernels of gptscratch/model/kernels.py swapped for the hand-written ones (`MANUAL`):

    linear       → LinearFunction            (qkv, proj, up, down, lm_head — tied or not)
    layer_norm   → LayerNormFunction         (ln_1, ln_2, ln_f, QK-norm)
    rms_norm     → RMSNormFunction           (the same places in an RMSNorm model)
    embedding    → EmbeddingFunction         (token table; learned position table)
    attention    → CausalAttentionFunction   (scores, causal mask, softmax, weighted sum)
    rotate       → RotaryFunction            (queries and keys, full or partial RoPE)
    activation   → ActivationFunction        (GELU, tanh-GELU, ReLU, SiLU, ReLU²: the model's forward)
    gated        → GatedActivationFunction   (a gated MLP's act(gate) ⊙ up: SwiGLU and the like)
    softcap      → SoftcapFunction           (the final-logit soft cap)
    cross_entropy→ CrossEntropyFunction

So `loss.backward()` runs only hand-written backward passes for every layer. What autograd still does is
bookkeeping whose derivative is the identity: residual additions (the gradient is copied to both branches),
reshapes and transposes between (B, T, C) and (B, nh, T, hs), splitting qkv into three, repeating grouped-query
key/value heads (the gradient of a copy is summed back), the constant √d_model scale, and summing the two
gradients of a tied embedding/output matrix into one `.grad`.

Parameters are the model's own tensors, so an optimizer built on `model.parameters()` trains the model; the
results equal autograd's (tests/test_manual.py checks gradients and one AdamW step in float64).

Supported: every ModelConfig except dropout > 0, which would need its random masks written out too —
`check_supported` refuses it with the fix. With a hook on an attention pattern, attention takes the model's
written-out path (autograd), as interpretability needs the weights. The pass runs in the parameters' dtype
(autocast is switched off inside: a hand-written backward in bf16 would need its own care).
"""

from __future__ import annotations

import torch

from ..errors import UsageError
from ..model import kernels
from .activations import activation, gated
from .attention import causal_attention
from .cross_entropy import cross_entropy, softcap
from .embedding import embedding
from .layernorm import layer_norm, rms_norm
from .linear import linear
from .rotary import apply_rotary


def _attention(q, k, v, mask=None, dropout: float = 0.0, is_causal: bool = False):
    if mask is not None or dropout:
        raise ValueError("manual attention computes unmasked causal self-attention without dropout")
    return causal_attention(q, k, v)


MANUAL = kernels.DEFAULT.replace(
    linear=linear, layer_norm=layer_norm, rms_norm=rms_norm, embedding=embedding, attention=_attention,
    rotate=apply_rotary, activation=activation, gated=gated, softcap=softcap, cross_entropy=cross_entropy,
    name="manual")


def check_supported(config) -> None:
    """Raise UsageError (with the fix) when manual mode cannot compute this ModelConfig."""
    if config.dropout > 0:
        raise UsageError(f"manual backward does not implement dropout (model dropout is {config.dropout}); "
                         "train with --dropout 0 or without --manual-backward")


def forward(model, idx: torch.Tensor, targets: torch.Tensor | None = None):
    """idx (B, T) → (logits (B, T, V), loss or None), like GPT.forward, every layer with a manual backward."""
    check_supported(model.config)
    if idx.size(1) > model.config.context_length:
        raise UsageError(f"sequence of {idx.size(1)} tokens exceeds the context length "
                         f"{model.config.context_length}; pass shorter sequences")
    with torch.autocast(idx.device.type, enabled=False), kernels.use(MANUAL):
        return model(idx, targets)


def loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of `model` on (x, y), whose `.backward()` runs only hand-written layer backwards."""
    return forward(model, x, y)[1]
