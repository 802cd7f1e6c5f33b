"""Checks of exercise 14: RMSNorm, the SwiGLU MLP and repeat_kv against gptscratch/model/norms.py,
feedforward.py and attention.py (float32)."""

from __future__ import annotations

import torch

from ...model import ModelConfig
from ...model.attention import repeat_kv
from ...model.feedforward import FeedForward
from ...model.norms import make_norm
from ..checking import CheckList, expect_close, randomized

CHECKS = CheckList()
LLAMA = ModelConfig(vocab_size=64, context_length=16, n_head=4, d_model=32, norm="rmsnorm", mlp="gated",
                    activation="silu", d_ff=88, bias=False)


def _rms(learner, x, eps, label):
    norm = make_norm(LLAMA.replace(layer_norm_eps=eps))
    with torch.no_grad():
        norm.weight.copy_(torch.randn(32))
        expected = norm(x)
    expect_close(label, learner.rms_norm(x, norm.weight.detach(), eps), expected, atol=1e-5, rtol=1e-5)


@CHECKS.add("rms_norm on (2, 5, 32) with a random γ equals the model's RMSNorm (atol 1e-5 + rtol 1e-5)")
def rms(learner):
    _rms(learner, torch.randn(2, 5, 32), 1e-5, "rms_norm(x, γ)")


@CHECKS.add("rms_norm of x + 3 (not centred) and ε = 0.5 equals the model's RMSNorm (atol 1e-5 + rtol 1e-5)")
def rms_shifted(learner):
    _rms(learner, torch.randn(1, 4, 32) * 0.5 + 3, 0.5, "rms_norm(x + 3, γ, eps=0.5)")


@CHECKS.add("swiglu_mlp on (2, 5, 32), d_ff 88, equals the model's gated FeedForward (atol 1e-5 + rtol 1e-5)")
def swiglu(learner):
    layer = randomized(FeedForward(LLAMA), 0.2)
    with torch.no_grad():
        x = torch.randn(2, 5, 32)
        expected = layer(x)
    got = learner.swiglu_mlp(x, layer.gate.weight.detach(), layer.up.weight.detach(), layer.down.weight.detach())
    expect_close("swiglu_mlp(x, …)", got, expected, atol=1e-5, rtol=1e-5)


@CHECKS.add("repeat_kv equals gptscratch's for (n_kv, groups) = (2, 3), (1, 4) and (4, 1) (exact)")
def grouped(learner):
    for n_kv, groups in ((2, 3), (1, 4), (4, 1)):
        kv = torch.randn(2, n_kv, 5, 8)
        expect_close(f"repeat_kv(kv with {n_kv} heads, groups={groups})", learner.repeat_kv(kv, groups),
                     repeat_kv(kv, groups), atol=0.0)
