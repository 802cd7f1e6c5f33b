"""Exercise 11 — top-p sampling and the KV cache (docs/lessons/11-sampling-and-kv-cache.md): a solution.

Write nucleus (top-p) filtering, which decides which tokens may be sampled, and the KV cache's write, which
makes generating a token cost one position instead of the whole text; then run `gptscratch learn check 11`
(`gptscratch learn hint 11` if stuck).
Shapes: B batch, V vocabulary, n_kv key/value heads, T new positions, L cached positions, hs head width.
"""

import torch


def top_p_filter(logits, p):
    """Keep the smallest set of most probable tokens whose probabilities add up to at least p; set every other
    logit to −∞ (Holtzman et al. 2019, "nucleus sampling").

        sort the probabilities softmax(z) in descending order: q₁ ≥ q₂ ≥ …
        keep token k (in that order) when q₁ + … + q_{k−1} < p      the tokens before it do not reach p yet

    So the most probable token is always kept, and the token that makes the sum reach p is kept too.
    logits (B, V) float; 0 < p ≤ 1. Returns (B, V): the kept logits unchanged, the others −inf.
    Reference: gptscratch/generation/sampling.py, `top_p_filter`.
    """
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    probs = torch.softmax(sorted_logits, dim=-1)
    before = probs.cumsum(dim=-1) - probs                              # the probability of the tokens before
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)                  # back to vocabulary order
    return logits.masked_fill(drop, float("-inf"))


def cache_write(cache_k, cache_v, length, k, v):
    """Append new keys and values to one layer's KV cache.

    cache_k, cache_v (B, n_kv, max_len, hs): preallocated buffers whose first `length` slots are filled. Write
    k, v (B, n_kv, T, hs) into slots length … length + T − 1 *in place* (never reallocate the buffers), and
    return (keys, values, new_length): every filled slot, (B, n_kv, length + T, hs) each, and length + T.
    Reference: gptscratch/model/kv_cache.py, `LayerKVCache.append`.
    """
    end = length + k.size(2)
    cache_k[:, :, length:end] = k
    cache_v[:, :, length:end] = v
    return cache_k[:, :, :end], cache_v[:, :, :end], end
