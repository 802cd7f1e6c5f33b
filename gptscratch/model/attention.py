"""Causal multi-head self-attention (Vaswani et al. 2017, "Attention Is All You Need", section 3.2).

For one head, with queries Q, keys K and values V (each (T, hs)):

    scores  = Q Kᵀ / √hs                       (T, T)    how much each position wants each other one
    scores  = scores masked to −∞ where key position > query position    (causal: no peeking ahead)
    weights = softmax(scores, dim=−1)           (T, T)    each row sums to 1
    out     = weights V                         (T, hs)

Dividing by √hs keeps the scores' variance near 1 so the softmax does not saturate at initialisation.
Multi-head: d_model is split into nh heads of width hs = d_model / nh that attend independently; their outputs
are concatenated back to (B, T, d_model) and mixed by an output projection. Cost: O(B · T² · d_model) time and
O(B · nh · T²) memory for the weights — the T² is why long contexts are expensive.

Grouped-query attention (ModelConfig.n_kv_head; Ainslie et al. 2023, "GQA"; multi-query: Shazeer 2019): the
queries keep nh heads, but keys and values have only n_kv heads, each shared by a group of nh / n_kv consecutive
query heads (query head h reads key/value head h // (nh / n_kv)). The KV cache — what decoding reads from memory
at every token — shrinks by the same factor, at little cost in quality; Llama 3 and Qwen use it.

QK-norm (ModelConfig.qk_norm; Dehghani et al. 2023, Qwen3): each head's queries and keys are normalised (the
model's norm, over hs) before the rotation, which bounds the scores and keeps the softmax from saturating.

Two implementations of the same maths:
- `attention_explicit` computes every step above and returns the weights (what interpretability reads);
- the fused kernel (`kernels.active().attention`, PyTorch's scaled_dot_product_attention by default) computes
  the same output without materialising the weights — it runs whenever nobody observes them.
tests/test_model.py proves the two agree.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import kernels
from .hooks import HookPoint
from .kv_cache import LayerKVCache
from .layers import Linear
from .norms import make_norm


def causal_mask(query_len: int, key_len: int, device=None) -> torch.Tensor:
    """Boolean (query_len, key_len) mask, True where attention is allowed.

    The queries are the *last* query_len positions of the key_len keys (with a cache, the first
    key_len − query_len keys are from earlier steps), so query i may see keys 0 .. key_len − query_len + i.
    """
    offset = key_len - query_len
    q = torch.arange(query_len, device=device).unsqueeze(1)
    k = torch.arange(key_len, device=device).unsqueeze(0)
    return k <= q + offset


def repeat_kv(t: torch.Tensor, groups: int) -> torch.Tensor:
    """Keys or values (B, n_kv, T, hs) → (B, n_kv·groups, T, hs): each KV head repeated for its group of query
    heads (consecutive copies, so query head h meets KV head h // groups)."""
    if groups == 1:
        return t
    B, n_kv, T, hs = t.shape
    return t[:, :, None].expand(B, n_kv, groups, T, hs).reshape(B, n_kv * groups, T, hs)


def attention_explicit(q, k, v, mask: torch.Tensor | None = None, dropout: float = 0.0):
    """The attention formula, step by step. q (B, nh, Tq, hs), k/v (B, nh, Tk, hs); mask broadcastable to
    (B, nh, Tq, Tk), True = may attend (default: causal). Returns (out (B, nh, Tq, hs), weights (B, nh, Tq, Tk))."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))              # (B, nh, Tq, Tk)
    if mask is None:
        mask = causal_mask(q.size(-2), k.size(-2), q.device)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    dropped = torch.nn.functional.dropout(weights, dropout) if dropout else weights
    return dropped @ v, weights


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention. x (B, T, d_model) → (B, T, d_model).

    Hook points: hook_q (B, nh, T, hs) and hook_k, hook_v (B, n_kv, T, hs) after QK-norm and the rotation;
    hook_pattern (B, nh, Tq, Tk) the softmax weights; hook_z (B, T, nh, hs) each head's output before the output
    projection.
    """

    def __init__(self, config):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = config.n_head, config.kv_heads, config.head_dim
        self.dropout = config.dropout
        # One matmul computes queries (nh heads), keys and values (n_kv heads each) for all heads.
        widths = (self.n_head * self.head_dim, self.n_kv_head * self.head_dim, self.n_kv_head * self.head_dim)
        self.qkv_widths = widths
        self.qkv = Linear(config.d_model, sum(widths), bias=config.has_qkv_bias)
        self.proj = Linear(config.d_model, config.d_model, bias=config.has_attention_out_bias)
        self.proj.is_residual_projection = True   # scaled at init, see GPT.init_weights
        if config.qk_norm:
            self.q_norm, self.k_norm = make_norm(config, self.head_dim), make_norm(config, self.head_dim)
        else:
            self.q_norm = self.k_norm = None
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()

    def forward(self, x, rope=None, mask=None, cache: LayerKVCache | None = None):
        """x (B, T, d_model); rope: (cos, sin) from RotaryEmbedding or None; mask: see GPT.forward (None =
        causal); cache: this layer's KV cache, extended by T positions. Returns (B, T, d_model)."""
        ops = kernels.active()
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(self.qkv_widths, dim=2)
        # (B, T, heads·hs) → (B, heads, T, hs): heads become a batch dimension.
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        k, v = (t.view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2) for t in (k, v))
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = ops.rotate(q, *rope), ops.rotate(k, *rope)
        q, k, v = self.hook_q(q), self.hook_k(k), self.hook_v(v)
        if cache is not None:
            k, v = cache.append(k, v)                                      # (B, n_kv, L + T, hs)
        groups = self.n_head // self.n_kv_head
        k, v = repeat_kv(k, groups), repeat_kv(v, groups)                  # (B, nh, L + T, hs)
        dropout = self.dropout if self.training else 0.0

        if self.hook_pattern.has_hooks:   # someone reads (or replaces) the weights: the written-out formula
            _, weights = attention_explicit(q, k, v, mask, dropout)
            out = self.hook_pattern(weights) @ v                           # a hook may have replaced them
        else:
            # With no mask, several new queries are a fresh causal sequence; a single new query is the last
            # position and may see every cached key, so it needs no mask at all.
            out = ops.attention(q, k, v, mask, dropout, mask is None and T > 1)
        z = self.hook_z(out.transpose(1, 2))                               # (B, T, nh, hs)
        return self.proj(z.reshape(B, T, C))
