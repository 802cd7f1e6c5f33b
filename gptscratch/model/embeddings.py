"""Embeddings: turning token ids into vectors, and telling the model where each token sits.

Attention by itself is permutation-invariant: shuffle the tokens and every output is shuffled the same way.
Order has to be injected. Three classic ways, all selectable with `ModelConfig.positional`:

- learned (GPT-2): a table P of shape (context_length, d_model); x = E[token] + P[position].
  Simple and strong, but cannot go past the trained length.
- sinusoidal (Vaswani et al. 2017, "Attention Is All You Need"): a fixed table,
      P[pos, 2i]   = sin(pos / 10000^(2i/d)),   P[pos, 2i+1] = cos(pos / 10000^(2i/d)).
  No parameters; each dimension pair is a clock with its own period.
- rope (Su et al. 2021, "RoFormer"): nothing is added to x. Instead queries and keys are *rotated* by an
  angle proportional to their position, pair of dimensions by pair, so the dot product q·k depends only on the
  distance between the two positions. Phi-2 rotates only a fraction of each head ("partial RoPE").

Positions are passed explicitly (`positions`, shape (T,) or (B, T)) rather than assumed to start at 0: during
cached generation the new token sits at position `cache length`, not 0 — forgetting that offset is the classic
KV-cache bug, and the test suite checks it for every kind.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LearnedPositions(nn.Module):
    """A trainable row per position. positions (T,) or (B, T) → (T, d_model) or (B, T, d_model)."""

    def __init__(self, context_length: int, d_model: int):
        super().__init__()
        self.table = nn.Embedding(context_length, d_model)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.table(positions)


class SinusoidalPositions(nn.Module):
    """The fixed sin/cos table of the original transformer, computed from positions (no parameters)."""

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        # 1 / base^(2i/d) for i = 0 .. d/2-1: the angular speed of each (sin, cos) pair.
        inv_freq = torch.exp(-math.log(base) * torch.arange(0, d_model, 2).float() / d_model)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.d_model = d_model

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        angles = positions.float().unsqueeze(-1) * self.inv_freq          # (..., T, d/2)
        table = torch.stack((angles.sin(), angles.cos()), dim=-1)         # (..., T, d/2, 2): interleave sin, cos
        return table.flatten(-2)[..., : self.d_model]


class RotaryEmbedding(nn.Module):
    """Rotary position embedding applied to queries and keys, "rotate-half" layout (GPT-NeoX, Phi-2, Llama).

    The first `rotary_dims` of each head are split into two halves (x1, x2); the pair (x1[i], x2[i]) is rotated
    by the angle position · θ_i with θ_i = base^(-2i / rotary_dims):
        x1' = x1·cos − x2·sin,   x2' = x2·cos + x1·sin.
    The remaining head dimensions pass through unchanged (partial RoPE). Cost: O(B·nh·T·rotary_dims).
    """

    def __init__(self, rotary_dims: int, base: float = 10000.0):
        super().__init__()
        self.rotary_dims = rotary_dims
        inv_freq = 1.0 / (base ** (torch.arange(0, rotary_dims, 2).float() / rotary_dims))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    def forward(self, x: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """x: (B, nh, T, hs); positions: (T,) or (B, T). Returns x with its first rotary_dims rotated."""
        angles = positions.float().unsqueeze(-1) * self.inv_freq          # (T, r/2) or (B, T, r/2)
        if angles.dim() == 3:
            angles = angles.unsqueeze(1)                                   # (B, 1, T, r/2): same for every head
        cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
        rotated, passthrough = x[..., : self.rotary_dims], x[..., self.rotary_dims:]
        x1, x2 = rotated.chunk(2, dim=-1)
        rotated = torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
        return torch.cat((rotated, passthrough), dim=-1)
