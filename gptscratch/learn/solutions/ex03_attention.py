"""Exercise 03 — attention (docs/lessons/03-attention.md): a solution.

Write scaled dot-product attention, then run `gptscratch learn check 03`; `gptscratch learn hint 03` if stuck.
Shapes: B batch, nh heads, Tq query positions, Tk key positions, hs head width.
"""

import math

import torch


def attention(q, k, v, mask=None):
    """Scaled dot-product attention, step by step:

        scores  = q kᵀ / √hs                          (B, nh, Tq, Tk)   how much each query wants each key
        scores  = −∞ where mask is False              a masked key gets weight 0
        weights = softmax(scores) over the keys       (B, nh, Tq, Tk)   each row sums to 1
        out     = weights v                           (B, nh, Tq, hs)   a weighted average of the values

    q (B, nh, Tq, hs); k, v (B, nh, Tk, hs); mask: a boolean tensor broadcastable to (B, nh, Tq, Tk), True where
    the query may attend to the key, or None for no mask at all (every key visible; lesson 4 adds the causal
    mask). Returns (out, weights).
    Reference: gptscratch/model/attention.py, `attention_explicit`.
    """
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))                 # (B, nh, Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
