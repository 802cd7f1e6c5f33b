"""The position-wise feed-forward network (MLP): the part of each block that processes tokens one at a time.

    pre  = x W₁ + b₁            (B, T, d_model) → (B, T, d_ff),  d_ff = 4·d_model by default
    post = act(pre)             the non-linearity (ModelConfig.activation; formulas in kernels.ACTIVATIONS)
    out  = post W₂ + b₂         (B, T, d_ff)    → (B, T, d_model)

Attention moves information *between* positions; the MLP transforms it *within* each position, and holds most
of a block's parameters (2·d_model·d_ff = 8·d_model² against attention's 4·d_model²). Each of the d_ff hidden
units is a "neuron" that fires on some pattern of the residual stream; interpretability reads them at hook_post.
Cost: O(B · T · d_model · d_ff). Vaswani et al. 2017, section 3.3.
"""

from __future__ import annotations

from torch import nn

from . import kernels
from .hooks import HookPoint
from .layers import Linear


class FeedForward(nn.Module):
    """The MLP of a block. x (B, T, d_model) → (B, T, d_model). Hook points: hook_pre and hook_post, (B, T, d_ff)
    before and after the activation."""

    def __init__(self, config):
        super().__init__()
        self.activation = config.activation
        self.up = Linear(config.d_model, config.hidden_dim, bias=config.bias)
        self.down = Linear(config.hidden_dim, config.d_model, bias=config.bias)
        self.down.is_residual_projection = True   # scaled at init, see GPT.init_weights
        self.dropout = nn.Dropout(config.dropout)
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x):
        pre = self.hook_pre(self.up(x))                                         # (B, T, d_ff)
        post = self.hook_post(kernels.active().activation(self.activation, pre))
        return self.dropout(self.down(post))
