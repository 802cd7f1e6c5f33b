"""Exercise 04 — multi-head attention and the causal mask (docs/lessons/04-multi-head-and-masking.md): a solution.

Write the causal mask and a whole multi-head attention layer, then run `gptscratch learn check 04`;
`gptscratch learn hint 04` if stuck.
Shapes: B batch, T positions, C = d_model, nh heads, hs = C / nh head width.
"""

import math

import torch


def causal_mask(query_len, key_len):
    """Which keys each query may see: a boolean (query_len, key_len) tensor, True where attention is allowed.

    The queries are the *last* query_len of the key_len positions (with a KV cache the first
    key_len − query_len keys were computed earlier), so query i sits at position i + key_len − query_len and
    may see keys 0 … i + key_len − query_len:

        causal_mask(3, 3)  [[T, F, F],        causal_mask(1, 4)  [[T, T, T, T]]   (a new token sees everything)
                            [T, T, F],
                            [T, T, T]]

    Reference: gptscratch/model/attention.py, `causal_mask`.
    """
    offset = key_len - query_len
    return torch.arange(key_len)[None, :] <= torch.arange(query_len)[:, None] + offset


def multi_head_attention(x, w_qkv, b_qkv, w_proj, b_proj, n_head):
    """Causal multi-head self-attention, the whole layer:

        q, k, v  = split(x W_qkvᵀ + b_qkv)                 three (B, T, C) parts, in that order
        each     → (B, nh, T, hs)                          head h holds dimensions h·hs … (h+1)·hs − 1
        head_h   = softmax(q_h k_hᵀ / √hs + M) v_h          M: 0 where allowed, −∞ in the future
        out      = concat(heads) W_projᵀ + b_proj           (B, T, C)

    x (B, T, C); w_qkv (3C, C), b_qkv (3C,); w_proj (C, C), b_proj (C,) — Linear layers store W as (out, in),
    so y = x @ W.T + b. Returns (B, T, C).
    Reference: gptscratch/model/attention.py, `CausalSelfAttention.forward`.
    """
    B, T, C = x.shape
    hs = C // n_head
    q, k, v = (x @ w_qkv.T + b_qkv).split(C, dim=-1)                            # (B, T, C) each
    q, k, v = (t.view(B, T, n_head, hs).transpose(1, 2) for t in (q, k, v))      # (B, nh, T, hs)
    scores = q @ k.transpose(-2, -1) / math.sqrt(hs)                             # (B, nh, T, T)
    scores = scores.masked_fill(~causal_mask(T, T), float("-inf"))
    heads = torch.softmax(scores, dim=-1) @ v                                    # (B, nh, T, hs)
    return heads.transpose(1, 2).reshape(B, T, C) @ w_proj.T + b_proj
