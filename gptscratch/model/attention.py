"""Causal multi-head self-attention, written out, plus the KV cache used for generation.

For one head, with queries Q, keys K and values V (each (T, hs)):

    scores  = Q Kᵀ / √hs                       (T, T)    how much each position wants each other one
    scores  = scores masked to -inf where key position > query position    (causal: no peeking ahead)
    weights = softmax(scores, dim=-1)           (T, T)    each row sums to 1
    out     = weights V                         (T, hs)

Dividing by √hs keeps the scores' variance near 1 so the softmax does not saturate at initialisation.
Multi-head: d_model is split into nh heads of width hs = d_model / nh that attend independently; their
outputs are concatenated back to (B, T, d_model) and mixed by an output projection. Cost: O(B · T² · d_model)
time and O(B · nh · T²) memory for the weights — the T² is why long contexts are expensive.

Two implementations of the same maths:
- `attention_explicit` computes every step above and can return the weights (needed by interpretability);
- `F.scaled_dot_product_attention` (a fused kernel, faster and lighter) runs when nobody asked for weights,
  through fused_attention.py (which only picks the precision of its CPU backward pass under bf16).
  tests/test_model.py proves the two agree to 1e-5 in fp32.

KV cache: when generating, the keys and values of earlier tokens never change, so each layer stores them in a
preallocated buffer and the new token only computes its own (1 query against L+1 keys: O(L) instead of O(L²)).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .embeddings import RotaryEmbedding
from .fused_attention import fused_attention
from .hooks import HookPoint


def causal_mask(query_len: int, key_len: int, device=None) -> torch.Tensor:
    """Boolean (query_len, key_len) mask, True where attention is allowed.

    Queries are the *last* query_len positions of the key_len keys (with a cache, the first key_len - query_len
    keys are from earlier steps), so query i may see keys 0 .. (key_len - query_len + i).
    """
    offset = key_len - query_len
    q = torch.arange(query_len, device=device).unsqueeze(1)
    k = torch.arange(key_len, device=device).unsqueeze(0)
    return k <= q + offset


def attention_explicit(q, k, v, mask: torch.Tensor | None, dropout: float = 0.0):
    """The attention formula, step by step. q: (B, nh, Tq, hs), k/v: (B, nh, Tk, hs). Returns (out, weights)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))             # (B, nh, Tq, Tk)
    if mask is None:
        mask = causal_mask(q.size(-2), k.size(-2), q.device)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    out = F.dropout(weights, dropout) @ v if dropout else weights @ v     # (B, nh, Tq, hs)
    return out, weights


class LayerKVCache:
    """One layer's keys and values, preallocated to (B, nh, max_len, hs) so decoding never reallocates."""

    def __init__(self, batch: int, n_head: int, max_len: int, head_dim: int, device=None, dtype=None):
        shape = (batch, n_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)

    def update(self, k: torch.Tensor, v: torch.Tensor, start: int):
        """Write the new keys/values at [start, start+T) and return everything cached so far."""
        end = start + k.size(2)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        return self.k[:, :, :end], self.v[:, :, :end]


class KVCache:
    """The cache for a whole model: one LayerKVCache per block and the number of positions filled."""

    def __init__(self, config, batch: int, max_len: int | None = None, device=None, dtype=None):
        self.max_len = max_len or config.context_length
        self.layers = [
            LayerKVCache(batch, config.n_head, self.max_len, config.head_dim, device, dtype)
            for _ in range(config.n_layer)
        ]
        self.length = 0

    def reset(self) -> None:
        self.length = 0

    def repeat_rows(self, repeats: int) -> None:
        """Turn each of the B cached rows into `repeats` consecutive copies (B·repeats rows): several samples
        continue one prefilled prompt without recomputing it."""
        for layer in self.layers:
            layer.k = layer.k.repeat_interleave(repeats, dim=0)
            layer.v = layer.v.repeat_interleave(repeats, dim=0)


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention. x: (B, T, d_model) → (B, T, d_model)."""

    def __init__(self, config):
        super().__init__()
        self.n_head, self.head_dim = config.n_head, config.head_dim
        self.dropout = config.dropout
        # One matmul computes queries, keys and values for all heads: (d_model → 3·d_model).
        self.qkv = nn.Linear(config.d_model, 3 * config.d_model, bias=config.bias)
        self.proj = nn.Linear(config.d_model, config.d_model, bias=config.bias)
        self.proj.is_residual_projection = True  # scaled at init, see GPT._init_weights
        self.rotary = (RotaryEmbedding(config.rotary_dims, config.rope_base)
                       if config.positional == "rope" else None)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_pattern = HookPoint()   # (B, nh, Tq, Tk) attention weights
        self.hook_z = HookPoint()         # (B, T, nh, hs) each head's output before the projection

    def forward(self, x, positions, mask=None, cache: LayerKVCache | None = None, cache_start: int = 0,
                need_weights: bool = False):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # (B, T, C) → (B, nh, T, hs): heads become a batch dimension.
        q, k, v = (t.view(B, T, self.n_head, self.head_dim).transpose(1, 2) for t in (q, k, v))
        if self.rotary is not None:
            q, k = self.rotary(q, positions), self.rotary(k, positions)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        if cache is not None:
            k, v = cache.update(k, v, cache_start)
        # A single new query (cached decoding) is the last position: it may see every key, so it needs no mask.
        # Several new queries after cached ones need the offset causal mask; a fresh sequence uses is_causal.
        if mask is None and T > 1 and k.size(2) != T:
            mask = causal_mask(T, k.size(2), x.device)  # queries are the last T of the keys
        dropout = self.dropout if self.training else 0.0

        weights = None
        if need_weights or self.hook_pattern.has_hooks:
            out, weights = attention_explicit(q, k, v, mask, dropout)
            weights = self.hook_pattern(weights)
            if self.hook_pattern.has_hooks:     # a hook may have replaced the pattern: recompute its output
                out = weights @ v
        else:
            out = fused_attention(q, k, v, mask, dropout, is_causal=mask is None and T > 1)
        out = self.hook_z(out.transpose(1, 2))                           # (B, T, nh, hs)
        return self.proj(out.reshape(B, T, C)), weights
