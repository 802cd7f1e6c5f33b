"""The MLP's non-linearities with their derivatives written out by hand: GELU (exact and tanh form), ReLU,
SiLU, ReLU² — and the gated form act(gate) ⊙ up of a gated MLP (SwiGLU).

All act element by element, so each backward is ∂L/∂x = g ⊙ f'(x) (same shape as x).

GELU, exact (Hendrycks & Gimpel 2016): x weighted by the probability that a standard normal is below it.

    f(x)  = x · Φ(x),             Φ(x) = ½ (1 + erf(x / √2))          φ(x) = e^(−x²/2) / √(2π)
    f'(x) = Φ(x) + x · φ(x)                                            (product rule; Φ' = φ)

GELU, tanh approximation (GPT-2's "gelu_new"):

    u     = √(2/π) · (x + 0.044715 x³)        t = tanh(u)
    f(x)  = ½ x (1 + t)
    f'(x) = ½ (1 + t) + ½ x (1 − t²) · √(2/π) · (1 + 3 · 0.044715 x²)   (tanh' = 1 − tanh²; chain rule for u)

ReLU: f(x) = max(0, x), f'(x) = 1 where x > 0 else 0 (PyTorch's choice at exactly 0, which we follow).

SiLU: f(x) = x · σ(x), σ(x) = 1 / (1 + e^(−x));  f'(x) = σ(x) + x · σ(x)(1 − σ(x)) = σ(x) (1 + x (1 − σ(x))).

ReLU²: f(x) = max(0, x)²;  f'(x) = 2 · max(0, x).

Gated: y = f(gate) ⊙ up, a product of two tensors of the same shape (B, T, d_ff), so each gets the other's
factor (product rule):  ∂L/∂gate = g ⊙ up ⊙ f'(gate),   ∂L/∂up = g ⊙ f(gate).

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


def silu_derivative(x):
    """f'(x) = σ(x) (1 + x (1 − σ(x)))."""
    sigma = torch.sigmoid(x)
    return sigma * (1.0 + x * (1.0 - sigma))


def relu2_derivative(x):
    """f'(x) = 2 · max(0, x)."""
    return 2.0 * x.clamp_min(0)


DERIVATIVES = {"gelu": gelu_derivative, "gelu_tanh": gelu_tanh_derivative, "relu": relu_derivative,
               "silu": silu_derivative, "relu2": relu2_derivative}


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


class GatedActivationFunction(torch.autograd.Function):
    """y = f(gate) ⊙ up (kernels.gated); the product rule above for the backward."""

    @staticmethod
    def forward(ctx, gate, up, name: str):
        ctx.save_for_backward(gate, up)
        ctx.name = name
        return FORWARD[name](gate) * up

    @staticmethod
    def backward(ctx, grad_out):
        gate, up = ctx.saved_tensors
        return grad_out * up * DERIVATIVES[ctx.name](gate), grad_out * FORWARD[ctx.name](gate), None


def gated(name: str, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """A gated MLP's non-linearity f(gate) ⊙ up, with the hand-written backward above."""
    return GatedActivationFunction.apply(gate, up, name)
