"""Exercise 05 — LayerNorm and the MLP (docs/lessons/05-residuals-layernorm-mlp.md).

Write the two sub-layers a block adds around attention, then run `gptscratch learn check 05`;
`gptscratch learn hint 05` if stuck. Shapes: B batch, T positions, C = d_model, F = d_ff (4·C by default).
"""

import math

import torch


def layer_norm(x, gamma, beta, eps=1e-5):
    """LayerNorm over the last dimension, each position on its own:

        μ  = mean(x)                  over the C features of one position
        σ² = mean((x − μ)²)           the biased variance (divide by C, not C − 1)
        y  = (x − μ) / √(σ² + ε) · γ + β

    x (B, T, C); gamma, beta (C,). Returns (B, T, C).
    Reference: gptscratch/model/norms.py, `LayerNorm` (built by `make_norm`).
    """
    raise NotImplementedError


def mlp(x, w_up, b_up, w_down, b_down):
    """The position-wise feed-forward network of GPT-2 (exact GELU):

        h   = GELU(x W_upᵀ + b_up)          (B, T, F)     GELU(z) = z · Φ(z) = z · ½ (1 + erf(z / √2))
        out = h W_downᵀ + b_down            (B, T, C)

    x (B, T, C); w_up (F, C), b_up (F,); w_down (C, F), b_down (C,) — weights stored (out, in) as in nn.Linear.
    Returns (B, T, C).
    Reference: gptscratch/model/feedforward.py, `FeedForward` (mlp="standard", activation="gelu").
    """
    raise NotImplementedError
