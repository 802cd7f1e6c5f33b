"""The MLP's non-linearities with their derivatives written out by hand: GELU (exact and tanh form), ReLU.

All three act element by element, so each backward is ∂L/∂x = g ⊙ f'(x) (same shape as x).

GELU, exact (Hendrycks & Gimpel 2016): x weighted by the probability that a standard normal is below it.

    f(x)  = x · Φ(x),             Φ(x) = ½ (1 + erf(x / √2))          φ(x) = e^(−x²/2) / √(2π)
    f'(x) = Φ(x) + x · φ(x)                                            (product rule; Φ' = φ)

GELU, tanh approximation (GPT-2's "gelu_new"):

    u     = √(2/π) · (x + 0.044715 x³)        t = tanh(u)
    f(x)  = ½ x (1 + t)
    f'(x) = ½ (1 + t) + ½ x (1 − t²) · √(2/π) · (1 + 3 · 0.044715 x²)   (tanh' = 1 − tanh²; chain rule for u)

ReLU: f(x) = max(0, x), f'(x) = 1 where x > 0 else 0 (PyTorch's choice at exactly 0, which we follow).

The forward passes are the model's own (gptscratch.model.kernels.ACTIVATIONS, written once); only the
derivatives are written here. Only the input is saved for backward; the derivative is recomputed from it
(cheap, element-wise).
"""

from __future__ import annotations

import math

import torch

from ..model.kernels import ACTIVATIONS as FORWARD

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_TANH_COEFF = 0.044715


def gelu_derivative(x):
    """f'(x) = Φ(x) + x · φ(x)."""
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    pdf = torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    return cdf + x * pdf


def gelu_tanh_derivative(x):
    """f'(x) = ½ (1 + t) + ½ x (1 − t²) · du/dx, t = tanh(u), u = √(2/π) (x + 0.044715 x³)."""
    t = torch.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_COEFF * x ** 3))
    du_dx = SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_COEFF * x * x)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du_dx


def relu_derivative(x):
    """f'(x) = 1 where x > 0, else 0."""
    return (x > 0).to(x.dtype)


DERIVATIVES = {"gelu": gelu_derivative, "gelu_tanh": gelu_tanh_derivative, "relu": relu_derivative}


class ActivationFunction(torch.autograd.Function):
    """y = f(x) with the model's f (kernels.ACTIVATIONS); ∂L/∂x = g ⊙ f'(x) with f' from DERIVATIVES."""

    @staticmethod
    def forward(ctx, x, name: str):
        ctx.save_for_backward(x)
        ctx.name = name
        return FORWARD[name](x)

    @staticmethod
    def backward(ctx, grad_out):
        (x,) = ctx.saved_tensors
        return grad_out * DERIVATIVES[ctx.name](x), None


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    """The MLP non-linearity `name` applied to x, with the hand-written backward above."""
    return ActivationFunction.apply(x, name)
