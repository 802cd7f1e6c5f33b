"""Checks of exercise 08: the Linear and LayerNorm backward passes against gptscratch/manual/ (float64, as
gradient checks are: tolerance 1e-9)."""

from __future__ import annotations

import torch

from ...manual import layer_norm, linear
from ..checking import CheckList, Mismatch, expect_close

CHECKS = CheckList()
TOL = 1e-9
F64 = torch.float64


def _three(result, what):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise Mismatch(f"{what}: expected three gradients (x, weight, bias), got {type(result).__name__}")
    return result


def _linear(learner, shape_x, out_features):
    x = torch.randn(*shape_x, dtype=F64, requires_grad=True)
    weight = torch.randn(out_features, shape_x[-1], dtype=F64, requires_grad=True)
    bias = torch.randn(out_features, dtype=F64, requires_grad=True)
    g = torch.randn(*shape_x[:-1], out_features, dtype=F64)
    expected = torch.autograd.grad((linear(x, weight, bias) * g).sum(), (x, weight, bias))
    got = _three(learner.linear_backward(g, x.detach(), weight.detach()), "linear_backward")
    for name, a, b in zip(("grad_x", "grad_weight", "grad_bias"), got, expected):
        expect_close(f"linear_backward {name}", a, b, atol=TOL, rtol=TOL)


@CHECKS.add("linear_backward on (2, 5, 6) → 4 equals gptscratch.manual.linear's backward (float64, 1e-9)")
def linear_grads(learner):
    _linear(learner, (2, 5, 6), 4)


@CHECKS.add("linear_backward on (3, 1, 8) → 8 equals the manual backward (float64, 1e-9)")
def linear_grads_square(learner):
    _linear(learner, (3, 1, 8), 8)


def _layer_norm(learner, x, eps):
    x = x.to(F64).requires_grad_(True)
    gamma = torch.randn(x.size(-1), dtype=F64, requires_grad=True)
    beta = torch.randn(x.size(-1), dtype=F64, requires_grad=True)
    g = torch.randn(*x.shape, dtype=F64)
    expected = torch.autograd.grad((layer_norm(x, gamma, beta, eps) * g).sum(), (x, gamma, beta))
    got = _three(learner.layer_norm_backward(g, x.detach(), gamma.detach(), eps), "layer_norm_backward")
    for name, a, b in zip(("grad_x", "grad_gamma", "grad_beta"), got, expected):
        expect_close(f"layer_norm_backward {name}", a, b, atol=TOL, rtol=TOL)


@CHECKS.add("layer_norm_backward on (2, 4, 16) equals gptscratch.manual.layer_norm's backward (float64, 1e-9)")
def layer_norm_grads(learner):
    _layer_norm(learner, torch.randn(2, 4, 16), 1e-5)


@CHECKS.add("layer_norm_backward with ε = 0.1 on inputs far from 0 equals the manual backward (float64, 1e-9)")
def layer_norm_grads_eps(learner):
    _layer_norm(learner, torch.randn(1, 3, 8) * 0.3 + 5, 0.1)
