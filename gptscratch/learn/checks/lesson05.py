"""Checks of exercise 05: layer_norm and mlp against gptscratch/model/norms.py and feedforward.py (float32)."""

from __future__ import annotations

import torch

from ...model import ModelConfig
from ...model.feedforward import FeedForward
from ...model.norms import make_norm
from ..checking import CheckList, expect_close, randomized

CHECKS = CheckList()
CONFIG = ModelConfig(vocab_size=64, context_length=16, n_head=4, d_model=32)


def _norm(eps: float = 1e-5):
    norm = make_norm(CONFIG.replace(layer_norm_eps=eps))
    with torch.no_grad():
        norm.weight.copy_(torch.randn(32))
        norm.bias.copy_(torch.randn(32))
    return norm


def _layer_norm(learner, norm, x, label):
    with torch.no_grad():
        expected = norm(x)
    got = learner.layer_norm(x, norm.weight.detach(), norm.bias.detach(), norm.eps)
    expect_close(label, got, expected, atol=1e-5, rtol=1e-5)


@CHECKS.add("layer_norm on (2, 6, 32) with random γ, β equals the model's LayerNorm (atol 1e-5 + rtol 1e-5)")
def plain(learner):
    _layer_norm(learner, _norm(), torch.randn(2, 6, 32), "layer_norm(x, γ, β)")


@CHECKS.add("layer_norm of x·50 + 30 (far from 0) equals the model's LayerNorm (atol 1e-5 + rtol 1e-5)")
def shifted(learner):
    _layer_norm(learner, _norm(), torch.randn(1, 4, 32) * 50 + 30, "layer_norm(50·x + 30, γ, β)")


@CHECKS.add("ε counts: layer_norm with ε = 0.1 on small inputs equals the model's LayerNorm (atol 1e-5 + rtol 1e-5)")
def epsilon(learner):
    x = torch.randn(1, 3, 32) * 0.1
    x[0, 0] = 0.25                                          # a constant row: (x − μ) = 0, only ε keeps it finite
    _layer_norm(learner, _norm(0.1), x, "layer_norm(x, γ, β, eps=0.1)")


@CHECKS.add("mlp on (2, 5, 32), d_ff 128, equals the model's FeedForward (atol 1e-5 + rtol 1e-5)")
def feed_forward(learner):
    layer = randomized(FeedForward(CONFIG), 0.2)
    with torch.no_grad():
        x = torch.randn(2, 5, 32)
        expected = layer(x)
    got = learner.mlp(x, layer.up.weight.detach(), layer.up.bias.detach(), layer.down.weight.detach(),
                      layer.down.bias.detach())
    expect_close("mlp(x, …)", got, expected, atol=1e-5, rtol=1e-5)
