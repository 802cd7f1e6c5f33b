"""Rotary position embedding (RoPE) with its backward pass written out by hand.

Forward, on a query or key x (B, nh, T, hs) whose first r dimensions rotate ("rotate-half" layout): the model's
own `kernels.rotate` (written once there). Split the rotated dimensions into halves x₁, x₂ (each r/2 wide);
with the angle a = pos · θ_i,

    x₁' = x₁ cos a − x₂ sin a          x₂' = x₂ cos a + x₁ sin a          the rest of x passes through

Each pair (x₁[i], x₂[i]) is multiplied by the 2×2 rotation R(a). The backward of y = R x is ∂L/∂x = Rᵀ g, and
Rᵀ = R(−a) is the rotation by the opposite angle (cos(−a) = cos a, sin(−a) = −sin a):

    ∂L/∂x = rotate(g, cos, −sin)       i.e. ∂L/∂x₁ = g₁ cos a + g₂ sin a,  ∂L/∂x₂ = g₂ cos a − g₁ sin a

A rotation preserves lengths, so RoPE never amplifies or shrinks a gradient. Nothing is saved but cos and sin.
"""

from __future__ import annotations

import torch

from ..model.kernels import rotate


class RotaryFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return rotate(x, cos, sin)

    @staticmethod
    def backward(ctx, grad_out):
        cos, sin = ctx.saved_tensors
        return rotate(grad_out, cos, -sin), None, None


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate the first 2·cos.size(-1) dimensions of x (B, nh, T, hs) with the hand-written backward above."""
    return RotaryFunction.apply(x, cos, sin)
