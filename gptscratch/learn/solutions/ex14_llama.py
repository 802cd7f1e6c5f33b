"""Exercise 14 — from GPT-2 to Llama (docs/lessons/14-from-gpt2-to-llama.md): a solution.

Write three of the pieces that turn GPT-2 into Llama: RMSNorm, the SwiGLU MLP and grouped-query attention's
sharing of key/value heads; then run `gptscratch learn check 14` (`gptscratch learn hint 14` if stuck).
Shapes: B batch, T positions, C = d_model, F = d_ff, nh query heads, n_kv key/value heads, hs head width.
"""

import torch


def rms_norm(x, gamma, eps=1e-5):
    """RMSNorm (Zhang & Sennrich 2019) over the last dimension: rescale, do not centre.

        y = x / √(mean(x²) + ε) · γ          no mean subtracted, no β

    x (B, T, C); gamma (C,). Returns (B, T, C).
    Reference: gptscratch/model/norms.py, `RMSNorm` (norm="rmsnorm").
    """
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * gamma


def swiglu_mlp(x, w_gate, w_up, w_down):
    """The gated MLP of Llama and Qwen with SiLU (Shazeer 2020, "GLU Variants Improve Transformer"), no biases:

        out = (SiLU(x W_gateᵀ) ⊙ x W_upᵀ) W_downᵀ        SiLU(z) = z · σ(z)

    x (B, T, C); w_gate, w_up (F, C); w_down (C, F). Returns (B, T, C).
    Reference: gptscratch/model/feedforward.py, `FeedForward` (mlp="gated", activation="silu").
    """
    gate = x @ w_gate.T
    return (gate * torch.sigmoid(gate) * (x @ w_up.T)) @ w_down.T


def repeat_kv(kv, groups):
    """Grouped-query attention's sharing: each of the n_kv key (or value) heads serves `groups` consecutive
    query heads, so query head h reads key/value head h // groups.

        (B, n_kv, T, hs) → (B, n_kv · groups, T, hs)       [k0, k1] with groups 2 → [k0, k0, k1, k1]

    Returns the repeated tensor. Reference: gptscratch/model/attention.py, `repeat_kv`.
    """
    return kv.repeat_interleave(groups, dim=1)
