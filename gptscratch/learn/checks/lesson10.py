"""Checks of exercise 10: clip_grad_norm against torch.nn.utils.clip_grad_norm_, which gptscratch's trainer
calls (float32; tolerance 1e-6 on the gradients, relative 1e-5 on the norm)."""

from __future__ import annotations

import math

import torch

from ..checking import CheckList, Mismatch, expect_close, expect_number

CHECKS = CheckList()


def _compare(learner, shapes, scale, max_norm, label):
    grads = [torch.randn(*shape) * scale for shape in shapes]
    params = [torch.nn.Parameter(torch.zeros(*shape)) for shape in shapes]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    expected_norm = float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    result = learner.clip_grad_norm([g.clone() for g in grads], max_norm)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Mismatch(f"clip_grad_norm ({label}): expected (clipped, norm), got {type(result).__name__}")
    clipped, norm = result
    expect_number(f"the norm ({label})", norm, expected_norm, rel=1e-5)
    if len(clipped) != len(params):
        raise Mismatch(f"clip_grad_norm ({label}): expected {len(params)} gradients back, got {len(clipped)}")
    for i, (got, p) in enumerate(zip(clipped, params)):
        expect_close(f"gradient {i} ({label})", got, p.grad, atol=1e-6)


@CHECKS.add("a norm of ≈ 16 clipped to 1: equals clip_grad_norm_ (atol 1e-6; norm rel 1e-5)")
def clipped(learner):
    _compare(learner, [(8, 4), (4,), (3, 5)], 3.0, 1.0, "norm ≈ 16, max 1")


@CHECKS.add("a norm below max_norm: the gradients come back unchanged (atol 1e-6; norm rel 1e-5)")
def unchanged(learner):
    _compare(learner, [(5, 5), (5,)], 0.05, 1.0, "norm ≈ 0.27, max 1")


@CHECKS.add("max_norm = inf (--grad-clip 0): only measured, as the trainer does (atol 1e-6; norm rel 1e-5)")
def infinite(learner):
    _compare(learner, [(16, 16), (16,)], 10.0, math.inf, "max inf")


@CHECKS.add("one global norm, not one per tensor: gradients of 4 and 50 numbers share one scale (atol 1e-6)")
def global_norm(learner):
    _compare(learner, [(2, 2), (50,)], 1.0, 0.5, "shapes (2, 2) and (50,), max 0.5")
