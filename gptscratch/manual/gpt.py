"""The whole GPT computed with the hand-written Functions: a forward pass whose backward is written out.

`forward(model, idx, targets)` walks an ordinary `gptscratch.model.GPT` — its modules and their parameters —
but computes every layer with this package's Functions instead of calling the modules:

    embedding   → EmbeddingFunction          (token table; learned position table)
    LayerNorm   → LayerNormFunction          (ln_1, ln_2, ln_f)
    Linear      → LinearFunction             (qkv, proj, up, down, lm_head — tied or not)
    attention   → CausalAttentionFunction    (scores, causal mask, softmax, weighted sum)
    RoPE        → RotaryFunction             (queries and keys, full or partial)
    activation  → GeluFunction / GeluTanhFunction / ReluFunction
    loss        → CrossEntropyFunction

So `loss.backward()` runs only hand-written backward passes for every layer. What autograd still does is
bookkeeping whose derivative is the identity: residual additions (the gradient is copied to both branches),
reshapes and transposes between (B, T, C) and (B, nh, T, hs), splitting qkv into three, the constant √d_model
scale, and summing the two gradients of a tied embedding/output matrix into one `.grad`.

Parameters are the model's own tensors, so an optimizer built on `model.parameters()` trains the model; the
results equal autograd's (tests/test_manual.py checks gradients and one AdamW step in float64, atol 1e-6).

Supported: every ModelConfig (positions learned / sinusoidal / rope, pre/post-norm, sequential/parallel,
attention-only, gelu / gelu_tanh / relu, bias on/off, tied or untied, lm_head bias, scaled embeddings) except
dropout > 0, which would need its random mask written out too — `check_supported` refuses it with the fix.
Hook points are not called: use the normal forward for interpretability. The pass runs in the parameters' dtype
(autocast is switched off inside: a hand-written backward in bf16 would need its own care).
"""

from __future__ import annotations

import math

import torch

from ..errors import UsageError
from .activations import ACTIVATIONS
from .attention import causal_attention
from .cross_entropy import cross_entropy
from .embedding import embedding
from .layernorm import layer_norm
from .linear import linear
from .rotary import apply_rotary, rotary_angles


def check_supported(config) -> None:
    """Raise UsageError (with the fix) when manual mode cannot compute this ModelConfig."""
    if config.dropout > 0:
        raise UsageError(f"manual backward does not implement dropout (model dropout is {config.dropout}); "
                         "train with --dropout 0 or without --manual-backward")


def _norm(module, x):
    return layer_norm(x, module.weight, module.bias, module.eps)


def _linear(module, x):
    return linear(x, module.weight, module.bias)


def _attention(attn, x, positions):
    """x (B, T, C) → (B, T, C): qkv projection, heads, RoPE, causal attention, output projection."""
    B, T, C = x.shape
    q, k, v = _linear(attn.qkv, x).split(C, dim=2)
    q, k, v = (t.view(B, T, attn.n_head, attn.head_dim).transpose(1, 2) for t in (q, k, v))
    if attn.rotary is not None:
        cos, sin = rotary_angles(positions, attn.rotary.inv_freq, q.dtype)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
    out = causal_attention(q, k, v)                                            # (B, nh, T, hs)
    return _linear(attn.proj, out.transpose(1, 2).reshape(B, T, C))


def _mlp(mlp, x, activation):
    return _linear(mlp.down, ACTIVATIONS[activation](_linear(mlp.up, x)))


def _block(block, x, positions, activation):
    """The same wiring as gptscratch/model/block.py, one branch per layout."""
    if block.attention_only:
        if block.norm_placement == "pre":
            return x + _attention(block.attn, _norm(block.ln_1, x), positions)
        return _norm(block.ln_1, x + _attention(block.attn, x, positions))
    if block.parallel:
        h = _norm(block.ln_1, x)
        return x + _attention(block.attn, h, positions) + _mlp(block.mlp, h, activation)
    if block.norm_placement == "pre":
        x = x + _attention(block.attn, _norm(block.ln_1, x), positions)
        return x + _mlp(block.mlp, _norm(block.ln_2, x), activation)
    x = _norm(block.ln_1, x + _attention(block.attn, x, positions))
    return _norm(block.ln_2, x + _mlp(block.mlp, x, activation))


def forward(model, idx: torch.Tensor, targets: torch.Tensor | None = None):
    """idx (B, T) → (logits (B, T, V), loss or None), like GPT.forward, every layer with a manual backward."""
    config = model.config
    check_supported(config)
    B, T = idx.shape
    if T > config.context_length:
        raise UsageError(f"sequence of {T} tokens exceeds the context length {config.context_length}; "
                         "pass shorter sequences")
    positions = torch.arange(T, device=idx.device)
    with torch.autocast(idx.device.type, enabled=False):
        x = embedding(idx, model.tok_embed.weight)                            # (B, T, C)
        if config.scale_embeddings:
            x = x * math.sqrt(config.d_model)
        if config.positional == "learned":
            x = x + embedding(positions, model.pos_embed.table.weight)        # (T, C) broadcast over B
        elif config.positional == "sinusoidal":
            x = x + model.pos_embed(positions).to(x.dtype)                     # a constant: no gradient
        for block in model.blocks:
            x = _block(block, x, positions, config.activation)
        if config.norm_placement == "pre":
            x = _norm(model.ln_f, x)
        logits = _linear(model.lm_head, x)                                     # (B, T, V)
        loss = None
        if targets is not None:
            loss = cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1)
    return logits, loss


def loss(model, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The training loss of `model` on (x, y), whose `.backward()` runs only hand-written layer backwards."""
    return forward(model, x, y)[1]
