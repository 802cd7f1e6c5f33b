"""Embeddings: turning token ids into vectors, and telling the model where each token sits.

Attention by itself is permutation-invariant: shuffle the tokens and every output is shuffled the same way.
Order has to be injected. Three classic ways, selected by `ModelConfig.positional`:

- learned (GPT-2; Radford et al. 2019): a table P (context_length, d_model); x = E[token] + P[position].
  Simple and strong, but has no row past the trained length.
- sinusoidal (Vaswani et al. 2017, "Attention Is All You Need"): a fixed table,
      P[pos, 2i] = sin(pos / 10000^(2i/d)),   P[pos, 2i+1] = cos(pos / 10000^(2i/d)).
  No parameters; each dimension pair is a clock with its own period.
- rope (Su et al. 2021, "RoFormer"): nothing is added to x. Instead each block rotates its queries and keys,
  pair of dimensions by pair, by an angle proportional to their position (kernels.rotate), so the dot product
  q·k depends only on the distance between the two positions. Phi-2 rotates only a fraction of each head
  ("partial RoPE", ModelConfig.rotary_fraction).

Every kind refuses positions at or past `context_length` (GPT.forward checks): a learned table has no such
row, and the sinusoidal and rotary models were never trained on those angles either.

Positions are passed explicitly (shape (T,) or (B, T)) rather than assumed to start at 0: during cached
generation the new token sits at position `cache length`, not 0 — forgetting that offset is the classic KV-cache
bug, and tests/test_model.py checks it for every kind.

None of these modules holds a buffer: the sinusoidal table and the rotary angles are recomputed from the
positions on each forward (a few small ops per forward, not per layer), so a model built on the `meta` device
and loaded from a checkpoint is complete as soon as its parameters are.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .layers import Embedding


class LearnedPositions(nn.Module):
    """A trainable row per position. positions (T,) or (B, T) → (T, d_model) or (B, T, d_model)."""

    def __init__(self, context_length: int, d_model: int):
        super().__init__()
        self.table = Embedding(context_length, d_model)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.table(positions)


class SinusoidalPositions(nn.Module):
    """The fixed sin/cos table of the original transformer. positions (T,) or (B, T) → (..., T, d_model), fp32."""

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        self.d_model, self.base = d_model, base

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        # 1 / base^(2i/d) for i = 0 .. d/2-1: the angular speed of each (sin, cos) pair.
        steps = torch.arange(0, self.d_model, 2, device=positions.device).float()
        inv_freq = torch.exp(-math.log(self.base) * steps / self.d_model)
        angles = positions.float().unsqueeze(-1) * inv_freq               # (..., T, d/2)
        table = torch.stack((angles.sin(), angles.cos()), dim=-1)         # (..., T, d/2, 2): interleave sin, cos
        return table.flatten(-2)[..., : self.d_model]


class RotaryEmbedding(nn.Module):
    """The rotary angles for a set of positions: (cos, sin), applied to queries and keys by kernels.rotate.

    Pair i of the first `rotary_dims` dimensions of a head turns at speed θ_i = base^(−2i / rotary_dims), so at
    position p its angle is p·θ_i. positions (T,) → (T, r/2) each; (B, T) → (B, 1, T, r/2), the same for
    every head. Computed once per forward and shared by every block. Cost O(T · r).

    Llama 3 scaling (`llama3` = (factor, low_freq_factor, high_freq_factor, original_context), Meta 2024, "The Llama
    3 Herd of Models"): to reach past the context the model was first trained on, the slow pairs — those whose
    wavelength 2π/θ_i exceeds original_context / low_freq_factor — turn `factor` times slower; the fast pairs —
    wavelength below original_context / high_freq_factor — are kept, since they encode local order; in between,
    θ_i is interpolated smoothly between θ_i / factor and θ_i.
    """

    def __init__(self, rotary_dims: int, base: float = 10000.0, llama3: tuple | None = None):
        super().__init__()
        self.rotary_dims, self.base, self.llama3 = rotary_dims, base, llama3

    def inverse_frequencies(self, device=None) -> torch.Tensor:
        """θ_i for i = 0 .. r/2 − 1 (r/2,), fp32."""
        steps = torch.arange(0, self.rotary_dims, 2, device=device).float()
        theta = 1.0 / (self.base ** (steps / self.rotary_dims))              # HF's formula, bit for bit
        if self.llama3 is None:
            return theta
        factor, low, high, original = self.llama3
        wavelength = 2 * math.pi / theta
        smooth = ((original / wavelength - low) / (high - low)).clamp(0.0, 1.0)   # 0: slow pair, 1: fast pair
        scaled = (1 - smooth) * theta / factor + smooth * theta
        scaled = torch.where(wavelength < original / high, theta, scaled)          # fast pairs: kept exactly
        return torch.where(wavelength > original / low, theta / factor, scaled)    # slow pairs: divided exactly

    def forward(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        angles = positions.float().unsqueeze(-1) * self.inverse_frequencies(positions.device)  # (T or B,T, r/2)
        if angles.dim() == 3:
            angles = angles.unsqueeze(1)                                     # (B, 1, T, r/2): every head alike
        return angles.cos().to(dtype), angles.sin().to(dtype)
