"""One transformer block: attention and MLP, each adding its output to the residual stream.

The residual stream (B, T, d_model) runs through the whole model; each block reads it and *adds* to it. Where the
normalisation sits (ModelConfig.norm_placement) and whether attention and MLP run one after the other or side by
side (ModelConfig.block_layout) are the classic variants; the names are those of the hook points:

    pre-norm, sequential (GPT-2, default)      resid_mid  = resid_pre + Attn(LN₁(resid_pre))
                                               resid_post = resid_mid + MLP(LN₂(resid_mid))
    post-norm, sequential (2017 transformer)   resid_mid  = LN₁(resid_pre + Attn(resid_pre))
                                               resid_post = LN₂(resid_mid + MLP(resid_mid))
    pre-norm, parallel (GPT-J, Phi-2)          h = LN₁(resid_pre)
                                               resid_post = resid_pre + Attn(h) + MLP(h)        (one norm)

Pre-norm keeps an un-normalised path from the input to the output, which is why deep pre-norm stacks train
without the careful warmup post-norm needs (Xiong et al. 2020, "On Layer Normalization in the Transformer
Architecture"). The parallel layout lets attention and MLP run concurrently; there is no middle of the block, so
it has no resid_mid. An attention-only block (ModelConfig.attention_only; Elhage et al. 2021, "A Mathematical
Framework for Transformer Circuits") has no MLP: resid_post = resid_pre + Attn(LN₁(resid_pre)).

This is the one place the wiring is written: training, manual-backward training and generation all run it.
"""

from __future__ import annotations

from torch import nn

from .attention import CausalSelfAttention
from .feedforward import FeedForward
from .hooks import HookPoint
from .norms import make_norm


class Block(nn.Module):
    """A transformer block. resid_pre (B, T, d_model) → resid_post (B, T, d_model).

    Hook points: hook_resid_pre, hook_attn_out, hook_resid_mid (sequential blocks with an MLP), hook_mlp_out
    (blocks with an MLP), hook_resid_post — all (B, T, d_model)."""

    def __init__(self, config):
        super().__init__()
        self.post_norm = config.norm_placement == "post"
        self.parallel = config.block_layout == "parallel"
        has_mlp = not config.attention_only
        self.ln_1 = make_norm(config)
        self.attn = CausalSelfAttention(config)
        # The parallel layout shares ln_1 between attention and MLP; attention-only blocks have no MLP to norm.
        self.ln_2 = make_norm(config) if has_mlp and not self.parallel else None
        self.mlp = FeedForward(config) if has_mlp else None
        self.resid_dropout = nn.Dropout(config.dropout)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint() if self.ln_2 is not None else None
        self.hook_mlp_out = HookPoint() if self.mlp is not None else None
        self.hook_resid_post = HookPoint()

    def forward(self, resid_pre, rope=None, mask=None, cache=None):
        """resid_pre (B, T, d_model); rope, mask, cache: passed to the attention (attention.py)."""
        resid_pre = self.hook_resid_pre(resid_pre)

        def attend(h):
            return self.hook_attn_out(self.resid_dropout(self.attn(h, rope, mask, cache)))

        if self.parallel:
            h = self.ln_1(resid_pre)
            resid_post = resid_pre + attend(h) + self.hook_mlp_out(self.mlp(h))
        elif self.post_norm:
            attn_out = attend(resid_pre)
            if self.mlp is None:
                resid_post = self.ln_1(resid_pre + attn_out)
            else:
                resid_mid = self.hook_resid_mid(self.ln_1(resid_pre + attn_out))
                mlp_out = self.hook_mlp_out(self.mlp(resid_mid))
                resid_post = self.ln_2(resid_mid + mlp_out)
        else:
            attn_out = attend(self.ln_1(resid_pre))
            if self.mlp is None:
                resid_post = resid_pre + attn_out
            else:
                resid_mid = self.hook_resid_mid(resid_pre + attn_out)
                mlp_out = self.hook_mlp_out(self.mlp(self.ln_2(resid_mid)))
                resid_post = resid_mid + mlp_out
        return self.hook_resid_post(resid_post)
