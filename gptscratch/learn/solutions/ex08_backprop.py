"""Exercise 08 — backpropagation by hand (docs/lessons/08-backpropagation.md): a solution.

Write the backward passes of a Linear layer and of LayerNorm — no autograd — then run
`gptscratch learn check 08` (`gptscratch learn hint 08` if stuck). The checks use float64 inputs, as
gradient checks do, so keep to the inputs' dtype. g = ∂L/∂y is the gradient flowing in from above.
Shapes: B batch, T positions, C_in / C_out the layer's widths, C = d_model.
"""

import torch


def linear_backward(grad_out, x, weight):
    """The gradients of y = x Wᵀ + b:

        ∂L/∂x = g W                          (B, T, C_in)
        ∂L/∂W = Σ over every (b, t) of gᵀ x  (C_out, C_in)   the batch and positions all add up
        ∂L/∂b = Σ over every (b, t) of g     (C_out,)

    grad_out g (B, T, C_out); x (B, T, C_in); weight W (C_out, C_in). Returns (grad_x, grad_weight, grad_bias).
    Reference: gptscratch/manual/linear.py, `LinearFunction.backward`.
    """
    rows_g = grad_out.reshape(-1, grad_out.size(-1))                     # (B·T, C_out)
    rows_x = x.reshape(-1, x.size(-1))                                   # (B·T, C_in)
    return grad_out @ weight, rows_g.T @ rows_x, rows_g.sum(0)


def layer_norm_backward(grad_out, x, gamma, eps=1e-5):
    """The gradients of LayerNorm y = x̂ γ + β over the last dimension, x̂ = (x − μ) · r, r = 1/√(σ² + ε):

        ∂L/∂γ = Σ over every (b, t) of g ⊙ x̂                                      (C,)
        ∂L/∂β = Σ over every (b, t) of g                                          (C,)
        ∂L/∂x = r · (ĝ − mean(ĝ) − x̂ · mean(ĝ ⊙ x̂)),   ĝ = g ⊙ γ,  means over C    (B, T, C)

    (μ and σ² depend on every entry of the row, which is where the two subtracted means come from.)
    grad_out g (B, T, C); x (B, T, C); gamma (C,). Returns (grad_x, grad_gamma, grad_beta).
    Reference: gptscratch/manual/layernorm.py, `LayerNormFunction.backward` (its docstring derives it).
    """
    mean = x.mean(-1, keepdim=True)
    r = 1.0 / torch.sqrt(((x - mean) ** 2).mean(-1, keepdim=True) + eps)
    x_hat = (x - mean) * r
    g_hat = grad_out * gamma
    grad_x = r * (g_hat - g_hat.mean(-1, keepdim=True) - x_hat * (g_hat * x_hat).mean(-1, keepdim=True))
    rows = grad_out.reshape(-1, grad_out.size(-1))
    return grad_x, (rows * x_hat.reshape(rows.shape)).sum(0), rows.sum(0)
