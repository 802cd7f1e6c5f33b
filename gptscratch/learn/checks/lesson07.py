"""Checks of exercise 07: the cross-entropy loss and its gradient against the model's loss
(gptscratch/model/kernels.py) and the hand-written backward of gptscratch/manual/cross_entropy.py (float32)."""

from __future__ import annotations

import torch

from ...manual import cross_entropy as manual_cross_entropy
from ...model import kernels
from ..checking import CheckList, expect_close, expect_number

CHECKS = CheckList()


def _loss(learner, logits, targets, label):
    expected = kernels.DEFAULT.cross_entropy(logits, targets).item()
    expect_number(f"cross_entropy({label})", learner.cross_entropy(logits, targets), expected, rel=1e-5)


@CHECKS.add("cross_entropy on (12, 50) logits equals the model's loss (rel 1e-5)")
def plain(learner):
    _loss(learner, torch.randn(12, 50) * 2, torch.randint(0, 50, (12,)), "12 × 50 logits")


@CHECKS.add("targets −1 are ignored: the mean is over the other rows, as the model's loss (rel 1e-5)")
def ignored(learner):
    targets = torch.randint(0, 30, (10,))
    targets[[1, 4, 5]] = -1
    _loss(learner, torch.randn(10, 30), targets, "3 of 10 targets −1")


@CHECKS.add("logits around 1000 (exp would overflow) give the model's loss (rel 1e-5)")
def stable(learner):
    _loss(learner, torch.randn(6, 40) * 20 + 1000, torch.randint(0, 40, (6,)), "logits ≈ 1000")


@CHECKS.add("cross_entropy_grad equals the backward of gptscratch.manual.cross_entropy, ignored rows 0 (atol 1e-6)")
def gradient(learner):
    logits = torch.randn(8, 20) * 3
    targets = torch.randint(0, 20, (8,))
    targets[[0, 6]] = -1
    leaf = logits.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(manual_cross_entropy(leaf, targets), leaf)
    expect_close("cross_entropy_grad(logits, targets)", learner.cross_entropy_grad(logits.clone(), targets),
                 expected, atol=1e-6)


@CHECKS.add("cross_entropy_grad of logits around 1000 equals the manual backward (atol 1e-6)")
def gradient_stable(learner):
    logits = torch.randn(5, 16) * 10 + 1000
    targets = torch.randint(0, 16, (5,))
    leaf = logits.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad(manual_cross_entropy(leaf, targets), leaf)
    expect_close("cross_entropy_grad(logits ≈ 1000, targets)", learner.cross_entropy_grad(logits.clone(), targets),
                 expected, atol=1e-6)
