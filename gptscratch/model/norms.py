"""Normalisation: keeping the residual stream's scale in check, one row (token) at a time.

LayerNorm (Ba, Kiros & Hinton 2016, "Layer Normalization"), over the last dimension of x (B, T, d):

    y = (x − mean(x)) / √(var(x) + ε) · γ + β          γ, β: (d,) learned; ε = ModelConfig.layer_norm_eps

Each token's vector is centred and scaled to unit variance, then re-scaled per dimension. Without it the stream
that every block adds to grows with depth and training becomes unstable. Where the norm sits (before each
sub-layer or after the residual addition) is ModelConfig.norm_placement, wired in block.py. Cost O(B·T·d).

`make_norm(config)` is the one place that builds a norm layer from the config, so every norm in the model (the
two per block and the final one) is the same kind.
"""

from __future__ import annotations

from torch import nn

from . import kernels


class LayerNorm(nn.LayerNorm):
    """nn.LayerNorm (same parameters and names), computed through the active kernels."""

    def forward(self, x):
        return kernels.active().layer_norm(x, self.weight, self.bias, self.eps)


def make_norm(config) -> LayerNorm:
    """The model's normalisation layer for width d_model: LayerNorm with bias when config.bias."""
    return LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
