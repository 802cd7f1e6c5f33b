"""One transformer block: attention and MLP, each wrapped in a residual connection and a LayerNorm.

The residual stream x (B, T, d_model) runs through the whole model; each block *adds* to it. Where the
LayerNorm sits (ModelConfig.norm_placement) and whether attention and MLP run one after the other or side by
side (ModelConfig.block_layout) are the classic variants:

    pre, sequential  (GPT-2, default)     x = x + Attn(LN₁(x));      x = x + MLP(LN₂(x))
    post, sequential (2017 transformer)   x = LN₁(x + Attn(x));      x = LN₂(x + MLP(x))
    pre, parallel    (GPT-J, Phi-2)       h = LN(x);  x = x + Attn(h) + MLP(h)     (one LayerNorm)

Pre-norm keeps an un-normalised path from the input to the output, which is why deep pre-norm stacks train
without the careful warmup post-norm needs. The parallel layout lets attention and MLP run concurrently; there
is no "middle" of the block, so it has no resid_mid activation. An attention-only block
(ModelConfig.attention_only) drops the MLP and its LayerNorm: x = x + Attn(LN₁(x)).

LayerNorm: y = (x − mean) / √(var + ε) · γ + β over the last dimension.
"""

from __future__ import annotations

from torch import nn

from .attention import CausalSelfAttention
from .feedforward import FeedForward
from .hooks import HookPoint


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.norm_placement, self.parallel = config.norm_placement, config.block_layout == "parallel"
        self.attention_only = config.attention_only
        self.ln_1 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        # The parallel layout shares ln_1 between attention and MLP.
        needs_ln_2 = not (self.parallel or self.attention_only)
        self.ln_2 = nn.LayerNorm(config.d_model, eps=config.layer_norm_eps, bias=config.bias) if needs_ln_2 else None
        self.mlp = None if self.attention_only else FeedForward(config)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = None if (self.parallel or self.attention_only) else HookPoint()
        self.hook_mlp_out = None if self.attention_only else HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x, positions, mask=None, cache=None, cache_start=0, need_weights=False):
        """x: (B, T, d_model) → (x, attention weights or None)."""
        x = self.hook_resid_pre(x)
        attend = lambda h: self.attn(h, positions, mask, cache, cache_start, need_weights)  # noqa: E731
        if self.attention_only:
            attn_out, weights = attend(self.ln_1(x) if self.norm_placement == "pre" else x)
            x = x + self.hook_attn_out(self.resid_dropout(attn_out))
            if self.norm_placement == "post":
                x = self.ln_1(x)
        elif self.parallel:
            h = self.ln_1(x)
            attn_out, weights = attend(h)
            attn_out = self.hook_attn_out(self.resid_dropout(attn_out))
            x = x + attn_out + self.hook_mlp_out(self.mlp(h))
        elif self.norm_placement == "pre":
            attn_out, weights = attend(self.ln_1(x))
            x = self.hook_resid_mid(x + self.hook_attn_out(self.resid_dropout(attn_out)))
            x = x + self.hook_mlp_out(self.mlp(self.ln_2(x)))
        else:  # post-norm
            attn_out, weights = attend(x)
            x = self.hook_resid_mid(self.ln_1(x + self.hook_attn_out(self.resid_dropout(attn_out))))
            x = self.ln_2(x + self.hook_mlp_out(self.mlp(x)))
        return self.hook_resid_post(x), weights
