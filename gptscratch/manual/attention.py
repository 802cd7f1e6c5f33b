"""Causal scaled-dot-product attention with its backward pass written out by hand.

Forward, per batch element and head (the function works on (B, nh, T, hs) tensors at once); s = 1/√hs:

    S = s · Q Kᵀ                         (Tq, Tk)   scores
    S_ij = −∞ where key j lies in query i's future (j > i + Tk − Tq)      the causal mask
    P = softmax(S) row by row            (Tq, Tk)   attention weights; masked entries are exactly 0
    O = P V                              (Tq, hs)

Backward, given G = ∂L/∂O (Tq, hs). Walk the three steps in reverse:

    O = P V          →   ∂L/∂V = Pᵀ G                    (Tk, hs)
                         ∂L/∂P = G Vᵀ                    (Tq, Tk)
    P = softmax(S)   →   the softmax Jacobian of one row is diag(p) − p pᵀ, so
                         ∂L/∂S_ij = P_ij · (∂L/∂P_ij − Σ_k ∂L/∂P_ik P_ik)              (Tq, Tk)
    S = s · Q Kᵀ     →   ∂L/∂Q = s · (∂L/∂S) K            (Tq, hs)
                         ∂L/∂K = s · (∂L/∂S)ᵀ Q           (Tk, hs)

The mask needs no backward of its own: a masked score has P_ij = 0, so ∂L/∂S_ij = 0 by the softmax formula
above — no gradient flows from a query to a key in its future, which is what makes the model causal in
training too. Saved for backward: Q, K, V and P, the last being (B, nh, Tq, Tk): the T² memory that fused
kernels (FlashAttention) avoid by recomputing P block by block during the backward pass.
"""

from __future__ import annotations

import math

import torch

from ..model.attention import causal_mask


class CausalAttentionFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v):
        scale = 1.0 / math.sqrt(q.size(-1))
        scores = (q @ k.transpose(-2, -1)) * scale                             # (B, nh, Tq, Tk)
        allowed = causal_mask(q.size(-2), k.size(-2), q.device)
        scores = scores.masked_fill(~allowed, float("-inf"))
        # Softmax written out: subtracting the row maximum changes nothing mathematically but keeps exp finite.
        scores = scores - scores.amax(-1, keepdim=True)
        weights = scores.exp()
        weights = weights / weights.sum(-1, keepdim=True)
        ctx.save_for_backward(q, k, v, weights)
        ctx.scale = scale
        return weights @ v                                                     # (B, nh, Tq, hs)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, weights = ctx.saved_tensors
        grad_v = weights.transpose(-2, -1) @ grad_out                         # (B, nh, Tk, hs)
        grad_weights = grad_out @ v.transpose(-2, -1)                         # (B, nh, Tq, Tk)
        grad_scores = weights * (grad_weights - (grad_weights * weights).sum(-1, keepdim=True))
        grad_q = (grad_scores @ k) * ctx.scale                                # (B, nh, Tq, hs)
        grad_k = (grad_scores.transpose(-2, -1) @ q) * ctx.scale              # (B, nh, Tk, hs)
        return grad_q, grad_k, grad_v


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(QKᵀ/√hs + causal mask) V for (B, nh, T, hs) tensors, with the hand-written backward above."""
    return CausalAttentionFunction.apply(q, k, v)
