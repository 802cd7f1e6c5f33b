"""Rotary position embedding (RoPE) with its backward pass written out by hand.

Forward, on a query or key x (B, nh, T, hs) whose first r dimensions rotate ("rotate-half" layout, as
gptscratch/model/embeddings.py): split them into halves x₁, x₂ (each r/2 wide); with the angle a = pos · θ_i,

    x₁' = x₁ cos a − x₂ sin a          x₂' = x₂ cos a + x₁ sin a          the rest of x passes through

Each pair (x₁[i], x₂[i]) is multiplied by the 2×2 rotation R(a). The backward of y = R x is ∂L/∂x = Rᵀ g, and
Rᵀ = R(−a) is the rotation by the opposite angle:

    ∂L/∂x₁ = g₁ cos a + g₂ sin a       ∂L/∂x₂ = g₂ cos a − g₁ sin a       the rest: g unchanged

A rotation preserves lengths, so RoPE never amplifies or shrinks a gradient. Nothing is saved but cos and sin.
"""

from __future__ import annotations

import torch


def rotary_angles(positions: torch.Tensor, inv_freq: torch.Tensor, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin of position · θ_i (θ = inv_freq, the model's buffer base^(−2i/r)): (T, r/2), or
    (B, 1, T, r/2) for (B, T) positions — the same arithmetic as the model's RotaryEmbedding."""
    angles = positions.float().unsqueeze(-1) * inv_freq
    if angles.dim() == 3:
        angles = angles.unsqueeze(1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


class RotaryFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        r = cos.size(-1) * 2
        x1, x2, rest = x[..., : r // 2], x[..., r // 2: r], x[..., r:]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)

    @staticmethod
    def backward(ctx, grad_out):
        cos, sin = ctx.saved_tensors
        r = cos.size(-1) * 2
        g1, g2, rest = grad_out[..., : r // 2], grad_out[..., r // 2: r], grad_out[..., r:]
        return torch.cat((g1 * cos + g2 * sin, g2 * cos - g1 * sin, rest), dim=-1), None, None


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first 2·cos.size(-1) dimensions of x (B, nh, T, hs) with the hand-written backward above."""
    return RotaryFunction.apply(x, cos, sin)
