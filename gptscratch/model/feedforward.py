"""The position-wise feed-forward network (MLP): the part of each block that processes tokens one at a time.

    h   = act(x W₁ + b₁)      (B, T, d_model) → (B, T, d_ff),  d_ff = 4·d_model by default
    out = h W₂ + b₂           (B, T, d_ff)    → (B, T, d_model)

Attention moves information *between* positions; the MLP transforms it *within* each position, and holds
most of a block's parameters (2·d_model·d_ff = 8·d_model² against attention's 4·d_model²). Cost:
O(B · T · d_model · d_ff).

Activations (ModelConfig.activation):
    relu       max(0, x)                                      (the 2017 transformer)
    gelu       x · Φ(x), Φ the standard normal CDF            (smooth ReLU; the default here)
    gelu_tanh  0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))     (GPT-2's "gelu_new", needed to load its weights)
"""

from __future__ import annotations

from torch import nn

from .hooks import HookPoint

ACTIVATION_MODULES = {
    "gelu": lambda: nn.GELU(),
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": lambda: nn.ReLU(),
}


class FeedForward(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.up = nn.Linear(config.d_model, config.hidden_dim, bias=config.bias)
        self.act = ACTIVATION_MODULES[config.activation]()
        self.down = nn.Linear(config.hidden_dim, config.d_model, bias=config.bias)
        self.down.is_residual_projection = True  # scaled at init, see GPT._init_weights
        self.dropout = nn.Dropout(config.dropout)
        self.hook_pre = HookPoint()    # (B, T, d_ff) before the activation
        self.hook_post = HookPoint()   # (B, T, d_ff) after it: the "neurons"

    def forward(self, x):
        hidden = self.hook_post(self.act(self.hook_pre(self.up(x))))
        return self.dropout(self.down(hidden))
