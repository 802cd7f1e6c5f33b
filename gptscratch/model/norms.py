"""Normalisation: keeping the residual stream's scale in check, one row (token) at a time.

Two kinds, ModelConfig.norm, over the last dimension of x (B, T, d):

    layernorm  y = (x − mean(x)) / √(var(x) + ε) · γ + β      (Ba, Kiros & Hinton 2016; GPT-2)
    rmsnorm    y = x / √(mean(x²) + ε) · γ                     (Zhang & Sennrich 2019; Llama, Qwen, Mistral)

γ (and β) are learned per dimension; ε = ModelConfig.layer_norm_eps. LayerNorm centres each token's vector and
scales it to unit variance; RMSNorm only rescales it to unit root-mean-square. Dropping the centring (and β) saves
a reduction and a parameter vector and, as Zhang & Sennrich found, loses nothing: the re-scaling is what keeps
training stable. Without a norm, the stream that every block adds to grows with depth. Where the norm sits
(before each sub-layer or after the residual addition) is ModelConfig.norm_placement, wired in block.py.
Cost O(B·T·d).

`make_norm(config)` is the one place that builds a norm layer from the config, so every norm in the model — the
two per block, the final one and, with QK-norm, the per-head ones on queries and keys — is the same kind.
"""

from __future__ import annotations

from torch import nn

from . import kernels


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm (same parameters and names), computed through the active kernels. x (..., d) → (..., d)."""

    def forward(self, x):
        return kernels.active().layer_norm(x, self.weight, self.bias, self.eps)


class RMSNorm(nn.RMSNorm):
    """nn.RMSNorm (one gain vector `weight`, no bias), computed through the active kernels. x (..., d) → (..., d)."""

    def forward(self, x):
        return kernels.active().rms_norm(x, self.weight, self.eps)


def make_norm(config, width: int | None = None) -> LayerNorm | RMSNorm:
    """The model's normalisation layer over `width` (default d_model): its kind is config.norm; a LayerNorm has
    a bias when config.bias."""
    width = width or config.d_model
    if config.norm == "rmsnorm":
        return RMSNorm(width, eps=config.layer_norm_eps)
    return LayerNorm(width, eps=config.layer_norm_eps, bias=config.bias)
