"""Checks of exercise 15: the LoRA layer and its merge against gptscratch/model/lora.py (float32)."""

from __future__ import annotations

import torch

from ...model.layers import Linear
from ...model.lora import LoRALinear, fold
from ..checking import CheckList, Mismatch, expect_close

CHECKS = CheckList()


def _layer(in_features=24, out_features=16, rank=4, alpha=8.0, bias=True, trained=True):
    """A LoRALinear around a random Linear; `trained`: B random too (a fresh adapter has B = 0)."""
    layer = LoRALinear(Linear(in_features, out_features, bias=bias), rank, alpha).eval()
    if trained:
        with torch.no_grad():
            layer.lora_B.copy_(torch.randn_like(layer.lora_B) * 0.3)
    return layer


def _args(layer):
    return (layer.weight.detach(), None if layer.bias is None else layer.bias.detach(), layer.lora_A.detach(),
            layer.lora_B.detach(), layer.alpha)


@CHECKS.add("lora_linear with a trained adapter (rank 4, α 8) equals LoRALinear (atol 1e-5 + rtol 1e-5)")
def forward(learner):
    layer, x = _layer(), torch.randn(2, 5, 24)
    with torch.no_grad():
        expected = layer(x)
    expect_close("lora_linear(x, …)", learner.lora_linear(x, *_args(layer)), expected, atol=1e-5, rtol=1e-5)


@CHECKS.add("rank 2, α 32, no bias: equals LoRALinear — the scale is α / r (atol 1e-5 + rtol 1e-5)")
def other_rank(learner):
    layer, x = _layer(rank=2, alpha=32.0, bias=False), torch.randn(3, 24)
    with torch.no_grad():
        expected = layer(x)
    expect_close("lora_linear(x, …, α=32, r=2)", learner.lora_linear(x, *_args(layer)), expected, atol=1e-5,
                 rtol=1e-5)


@CHECKS.add("a fresh adapter (B = 0): output = the base layer's; gradients as LoRALinear's, only B moves (atol 1e-5)")
def fresh(learner):
    layer, x = _layer(trained=False), torch.randn(4, 24)
    upstream = torch.randn(4, 16)
    expected_y = layer(x)
    expected_a, expected_b = torch.autograd.grad((expected_y * upstream).sum(), (layer.lora_A, layer.lora_B))
    lora_A = layer.lora_A.detach().clone().requires_grad_(True)
    lora_B = layer.lora_B.detach().clone().requires_grad_(True)
    y = learner.lora_linear(x, layer.weight.detach(), layer.bias.detach(), lora_A, lora_B, layer.alpha)
    expect_close("lora_linear with B = 0", y, expected_y.detach(), atol=1e-5, rtol=1e-5)
    if not torch.is_tensor(y) or not y.requires_grad:
        raise Mismatch("lora_linear's output does not depend on lora_A and lora_B through autograd; "
                       "expected gradients to reach them")
    grad_a, grad_b = torch.autograd.grad((y * upstream).sum(), (lora_A, lora_B), allow_unused=True)
    grad_a = torch.zeros_like(lora_A) if grad_a is None else grad_a
    expect_close("∂L/∂A with B = 0 (must be 0)", grad_a, expected_a, atol=1e-5)
    expect_close("∂L/∂B with B = 0", grad_b, expected_b, atol=1e-5, rtol=1e-5)


@CHECKS.add("merge_lora equals lora.fold, and the merged Linear computes lora_linear (atol 1e-5 + rtol 1e-5)")
def merge(learner):
    layer = _layer()
    weight, bias, lora_A, lora_B, alpha = _args(layer)
    merged = learner.merge_lora(weight, lora_A, lora_B, alpha)
    expect_close("merge_lora(W, A, B, α)", merged, fold(weight, lora_A, lora_B, alpha / lora_A.shape[0]), atol=1e-5,
                 rtol=1e-5)
    x = torch.randn(3, 24)
    with torch.no_grad():
        expected = layer(x)
    expect_close("x @ merge_lora(…).T + b", x @ merged.T + bias, expected, atol=1e-5, rtol=1e-5)
