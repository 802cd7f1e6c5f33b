"""A fully connected layer with its backward pass written out by hand.

Forward, for x of shape (..., n_in), weight W (n_out, n_in) and bias b (n_out,):

    y = x Wᵀ + b                                        (..., n_out)

Backward. Let g = ∂L/∂y (..., n_out). Flatten the leading dimensions into N rows (X: (N, n_in),
G: (N, n_out)); y_nj = Σ_i X_ni W_ji + b_j, so each partial derivative is a single product:

    ∂L/∂X_ni = Σ_j G_nj W_ji          →  ∂L/∂x = g W                 (..., n_in)
    ∂L/∂W_ji = Σ_n G_nj X_ni          →  ∂L/∂W = Gᵀ X                (n_out, n_in)   summed over every row
    ∂L/∂b_j  = Σ_n G_nj               →  ∂L/∂b = Σ_rows g            (n_out,)

The weight gradient sums over the batch and the sequence: every position used the same W. Cost: two matmuls
of the forward's size, so a backward pass is about twice a forward.
"""

from __future__ import annotations

import torch


class LinearFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = x @ weight.t()
        return y + bias if bias is not None else y

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = grad_out @ weight                                         # (..., n_in)
        rows_g = grad_out.reshape(-1, grad_out.size(-1))                       # (N, n_out)
        if ctx.needs_input_grad[1]:
            grad_w = rows_g.t() @ x.reshape(-1, x.size(-1))                    # (n_out, n_in)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = rows_g.sum(0)                                             # (n_out,)
        return grad_x, grad_w, grad_b


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """y = x Wᵀ + b with the hand-written backward above."""
    return LinearFunction.apply(x, weight, bias)
