"""The position-wise feed-forward network (MLP): the part of each block that processes tokens one at a time.

Standard (ModelConfig.mlp = "standard"; Vaswani et al. 2017, section 3.3; GPT-2):

    pre  = x W_up + b                (B, T, d_model) → (B, T, d_ff),  d_ff = 4·d_model by default
    post = act(pre)                  the non-linearity (ModelConfig.activation; formulas in kernels.ACTIVATIONS)
    out  = post W_down + b           (B, T, d_ff)    → (B, T, d_model)

Gated (ModelConfig.mlp = "gated"; Shazeer 2020, "GLU Variants Improve Transformer"; Llama, Qwen, Mistral):

    pre  = x W_gate                  (B, T, d_ff)    what decides how much of each hidden unit passes
    post = act(pre) ⊙ (x W_up)       (B, T, d_ff)    the gate times a second, linear projection
    out  = post W_down               (B, T, d_model)

With act = SiLU this is SwiGLU. The gate lets each unit scale a linear feature instead of only thresholding one,
which trains to a lower loss for the same compute; it has three matrices instead of two, so gated models use a
smaller d_ff (Llama: ≈ 8/3·d_model) to keep the parameter count. Attention moves information *between*
positions; the MLP transforms it *within* each position, and holds most of a block's parameters (2·d_model·d_ff,
or 3·d_model·d_ff gated). Each of the d_ff hidden units is a "neuron"; interpretability reads them at hook_post.
Cost: O(B · T · d_model · d_ff).
"""

from __future__ import annotations

from torch import nn

from . import kernels
from .hooks import HookPoint
from .layers import Linear


class FeedForward(nn.Module):
    """The MLP of a block. x (B, T, d_model) → (B, T, d_model). Hook points: hook_pre (B, T, d_ff) what the
    activation reads (the gate's output when gated), hook_post (B, T, d_ff) what the down projection reads."""

    def __init__(self, config):
        super().__init__()
        self.activation = config.activation
        bias = config.has_mlp_bias
        self.gate = Linear(config.d_model, config.hidden_dim, bias=bias) if config.mlp == "gated" else None
        self.up = Linear(config.d_model, config.hidden_dim, bias=bias)
        self.down = Linear(config.hidden_dim, config.d_model, bias=bias)
        self.down.is_residual_projection = True   # scaled at init, see GPT.init_weights
        self.dropout = nn.Dropout(config.dropout)
        self.hook_pre = HookPoint()
        self.hook_post = HookPoint()

    def forward(self, x):
        ops = kernels.active()
        if self.gate is None:
            pre = self.hook_pre(self.up(x))                                     # (B, T, d_ff)
            post = self.hook_post(ops.activation(self.activation, pre))
        else:
            pre = self.hook_pre(self.gate(x))                                   # (B, T, d_ff)
            post = self.hook_post(ops.gated(self.activation, pre, self.up(x)))
        return self.dropout(self.down(post))
