"""LayerNorm and RMSNorm with their backward passes written out by hand.

Forward, over the last dimension of x (..., D), for each row separately:

    μ = (1/D) Σ_i x_i            σ² = (1/D) Σ_i (x_i − μ)²          r = 1/√(σ² + ε)
    x̂_i = (x_i − μ) · r                                             (the normalised row: mean 0, variance ≈ 1)
    y_i = x̂_i · γ_i + β_i                                           γ, β: (D,)

Backward. Let g = ∂L/∂y. The parameters are the easy part, summed over every row (batch and sequence):

    ∂L/∂γ = Σ_rows g ⊙ x̂            ∂L/∂β = Σ_rows g

For the input, write ĝ = g ⊙ γ (= ∂L/∂x̂). Each x̂_j depends on every x_i of its row through μ and σ:

    ∂x̂_j/∂x_i = r · (δ_ij − 1/D − x̂_i x̂_j / D)

(the −1/D comes from μ, the −x̂_i x̂_j/D from σ²: ∂σ²/∂x_i = 2(x_i − μ)/D and ∂r/∂σ² = −r³/2). Contracting:

    ∂L/∂x_i = r · (ĝ_i − mean_j(ĝ_j) − x̂_i · mean_j(ĝ_j x̂_j))                         (..., D)

So the input gradient is ĝ with its mean removed and its component along x̂ removed, scaled by r: exactly the
two directions in which LayerNorm's output cannot move. Cost O(rows · D); saved for backward: x̂ and r.

RMSNorm is the same without the centring (μ = 0, no β): r = 1/√(mean(x²) + ε), x̂ = x · r, y = x̂ γ. Only the
σ² path is left, so only the component along x̂ is removed:

    ∂L/∂γ = Σ_rows g ⊙ x̂            ∂L/∂x_i = r · (ĝ_i − x̂_i · mean_j(ĝ_j x̂_j))
"""

from __future__ import annotations

import torch


class LayerNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, eps: float):
        mean = x.mean(-1, keepdim=True)
        var = ((x - mean) ** 2).mean(-1, keepdim=True)                         # biased, as nn.LayerNorm
        rstd = torch.rsqrt(var + eps)                                          # (..., 1)
        x_hat = (x - mean) * rstd                                              # (..., D)
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.has_weight, ctx.has_bias = weight is not None, bias is not None
        y = x_hat * weight if weight is not None else x_hat
        return y + bias if bias is not None else y

    @staticmethod
    def backward(ctx, grad_out):
        x_hat, rstd, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        rows_g = grad_out.reshape(-1, grad_out.size(-1))
        if ctx.has_weight and ctx.needs_input_grad[1]:
            grad_w = (rows_g * x_hat.reshape(rows_g.shape)).sum(0)            # (D,)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = rows_g.sum(0)                                             # (D,)
        if ctx.needs_input_grad[0]:
            g_hat = grad_out * weight if ctx.has_weight else grad_out
            grad_x = rstd * (g_hat - g_hat.mean(-1, keepdim=True)
                             - x_hat * (g_hat * x_hat).mean(-1, keepdim=True))
        return grad_x, grad_w, grad_b, None


def layer_norm(x, weight=None, bias=None, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm over the last dimension with the hand-written backward above."""
    return LayerNormFunction.apply(x, weight, bias, eps)


class RMSNormFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, eps: float):
        rstd = torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)               # (..., 1)
        x_hat = x * rstd                                                       # (..., D)
        ctx.save_for_backward(x_hat, rstd, weight)
        ctx.has_weight = weight is not None
        return x_hat * weight if weight is not None else x_hat

    @staticmethod
    def backward(ctx, grad_out):
        x_hat, rstd, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.has_weight and ctx.needs_input_grad[1]:
            rows_g = grad_out.reshape(-1, grad_out.size(-1))
            grad_w = (rows_g * x_hat.reshape(rows_g.shape)).sum(0)            # (D,)
        if ctx.needs_input_grad[0]:
            g_hat = grad_out * weight if ctx.has_weight else grad_out
            grad_x = rstd * (g_hat - x_hat * (g_hat * x_hat).mean(-1, keepdim=True))
        return grad_x, grad_w, None


def rms_norm(x, weight=None, eps: float = 1e-5) -> torch.Tensor:
    """RMSNorm over the last dimension with the hand-written backward above."""
    return RMSNormFunction.apply(x, weight, eps)
