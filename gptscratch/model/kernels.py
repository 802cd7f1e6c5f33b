"""The elementary operations every layer is computed with — and the one seam through which they are swapped.

The modules of this package never call PyTorch's arithmetic directly: they compose these operations, taken
from `active()`. Shapes: B batch, T positions, d d_model, nh heads, hs head width, V vocabulary.

    linear(x, W, b)                    y = x Wᵀ + b                                  (..., in) → (..., out)
    layer_norm(x, w, b, eps)           y = (x − mean) / √(var + ε) · w + b, over the last dimension
    rms_norm(x, w, eps)                y = x / √(mean(x²) + ε) · w, over the last dimension
    embedding(idx, W)                  y = W[idx]                                    (B, T) → (B, T, d)
    attention(q, k, v, mask, dropout, is_causal)
                                       softmax(q kᵀ / √hs + mask) v, fused           (B, nh, T, hs)
    rotate(x, cos, sin)                the rotary rotation of query/key pairs (below; embeddings.py has the idea)
    activation(name, x)                the MLP's non-linearity, ACTIVATIONS[name](x)
    gated(name, gate, up)              a gated MLP's non-linearity, ACTIVATIONS[name](gate) ⊙ up
    softcap(logits, c)                 c · tanh(logits / c): every logit squashed into (−c, c)
    cross_entropy(logits, targets)     mean of −log softmax(logits)[target] over targets ≠ −1   (N, V), (N,)

By default (`DEFAULT`) they are PyTorch's own functions, which autograd differentiates. Two packages supply the
*same maths computed differently*, and install it with `use(kernels)` for the duration of a `with` block:
    gptscratch.manual   every operation with a hand-written backward pass (`train --manual-backward`);
    gptscratch.accel    faster kernels where a measurement shows they pay on this machine (turned off by
                        `--no-accel` / GPTSCRATCH_ACCEL=0).
Only the operations change; the wiring of the model (block.py, gpt.py) is the one code that runs in every mode,
so a breakpoint in Block.forward stops in training, manual training and generation alike.

Why a module-level "active" table rather than arguments passed down: the layers keep their usual
`forward(x)` signatures, and torch.compile sees an ordinary global it can guard on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

# The MLP's non-linearities (ModelConfig.activation):
#   relu       max(0, x)                                      (the 2017 transformer)
#   gelu       x · Φ(x), Φ the standard normal CDF            (Hendrycks & Gimpel 2016; smooth ReLU; the default)
#   gelu_tanh  0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))     (GPT-2's "gelu_new", needed to load its weights)
#   silu       x · σ(x), σ the logistic sigmoid               (Elfwing et al. 2018; gated: SwiGLU, Shazeer 2020)
#   relu2      max(0, x)²                                     (So et al. 2021, "Primer"; modded-nanogpt, nanochat)
ACTIVATIONS: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "gelu": F.gelu,
    "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "relu2": lambda x: F.relu(x).square(),
}


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotary position embedding, "rotate-half" layout (GPT-NeoX, Llama, Phi-2; Su et al. 2021, "RoFormer").

    x (..., T, hs); cos, sin (..., T, r/2) with r ≤ hs the rotated dimensions. The first r dimensions of each
    head are split into halves x₁, x₂ and each pair (x₁[i], x₂[i]) is turned by its angle a = position · θ_i:
        x₁' = x₁ cos a − x₂ sin a,     x₂' = x₂ cos a + x₁ sin a
    The remaining hs − r dimensions pass through unchanged ("partial RoPE"). Cost O(numel(x)).
    """
    half = cos.size(-1)
    x1, x2, rest = x[..., :half], x[..., half: 2 * half], x[..., 2 * half:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)


def _layer_norm(x, weight, bias, eps: float):
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)


def _rms_norm(x, weight, eps: float):
    if weight is not None and weight.dtype != x.dtype:   # bf16 activations under autocast, fp32 gains: in fp32
        return F.rms_norm(x.float(), x.shape[-1:], weight.float(), eps).to(x.dtype)
    return F.rms_norm(x, x.shape[-1:], weight, eps)


def _attention(q, k, v, mask=None, dropout: float = 0.0, is_causal: bool = False):
    # One fused kernel ("flash" attention where available) that never materialises the (T, T) weights.
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=is_causal)


def _activation(name: str, x):
    return ACTIVATIONS[name](x)


def _gated(name: str, gate, up):
    return ACTIVATIONS[name](gate) * up


def _softcap(logits, cap: float):
    return cap * torch.tanh(logits / cap)


def _cross_entropy(logits, targets):
    return F.cross_entropy(logits.float(), targets, ignore_index=-1)   # the loss in fp32 even under bf16


@dataclass(frozen=True)
class Kernels:
    """One implementation of each elementary operation (module docstring). Build variants with
    `dataclasses.replace(DEFAULT, attention=...)`."""

    linear: Callable = F.linear
    layer_norm: Callable = _layer_norm
    rms_norm: Callable = _rms_norm
    embedding: Callable = F.embedding
    attention: Callable = _attention
    rotate: Callable = rotate
    activation: Callable = _activation
    gated: Callable = _gated
    softcap: Callable = _softcap
    cross_entropy: Callable = _cross_entropy
    name: str = "pytorch"

    def replace(self, **changes) -> "Kernels":
        return replace(self, **changes)


DEFAULT = Kernels()
_active = DEFAULT


def active() -> Kernels:
    """The operations in use right now (DEFAULT unless a `use` block installed others)."""
    return _active


@contextlib.contextmanager
def use(kernels: Kernels) -> Iterator[Kernels]:
    """Compute with `kernels` inside the block; the previous ones come back on exit, even after an error."""
    global _active
    previous, _active = _active, kernels
    try:
        yield kernels
    finally:
        _active = previous
