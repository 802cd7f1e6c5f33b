"""Linear and Embedding: PyTorch's layers, computed through the active kernels (kernels.py).

They are `nn.Linear` and `nn.Embedding` in every respect — parameters, names, initialisation, state dicts —
except that `forward` takes its arithmetic from `kernels.active()`, so `gptscratch.manual` (hand-written
backward passes) and `gptscratch.accel` (faster kernels) can compute the same layer without a second model.

    Linear      x (..., in) → x Wᵀ + b (..., out);  W (out, in), b (out,) or None.  Cost O(numel(x) · out).
    Embedding   ids (B, T) → W[ids] (B, T, d);      W (V, d).                       Cost O(B · T · d).
"""

from __future__ import annotations

from torch import nn

from . import kernels


class Linear(nn.Linear):
    """y = x Wᵀ + b (see the module docstring)."""

    def forward(self, x):
        return kernels.active().linear(x, self.weight, self.bias)


class Embedding(nn.Embedding):
    """y = W[ids] (see the module docstring)."""

    def forward(self, ids):
        return kernels.active().embedding(ids, self.weight)
