"""Checks of exercise 03: attention(q, k, v, mask) against gptscratch/model/attention.py's attention_explicit
(float32; tolerance 1e-5 on outputs and weights of size ≈ 1)."""

from __future__ import annotations

import torch

from ...model.attention import attention_explicit, causal_mask
from ..checking import CheckList, Mismatch, expect_close

CHECKS = CheckList()
TOL = 1e-5


def _compare(learner, q, k, v, mask, label):
    reference_mask = mask if mask is not None else torch.ones(q.size(-2), k.size(-2), dtype=torch.bool)
    expected_out, expected_weights = attention_explicit(q, k, v, reference_mask)
    result = learner.attention(q, k, v, mask)
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Mismatch(f"attention({label}): expected a pair (out, weights), got {type(result).__name__}")
    out, weights = result
    expect_close(f"weights ({label})", weights, expected_weights, atol=TOL)
    expect_close(f"out ({label})", out, expected_out, atol=TOL)


@CHECKS.add("no mask: out and weights equal attention_explicit's for (2, 3, 5, 8) inputs (atol 1e-5)")
def no_mask(learner):
    q, k, v = (torch.randn(2, 3, 5, 8) for _ in range(3))
    _compare(learner, q, k, v, None, "no mask")


@CHECKS.add("causal mask: equal attention_explicit's, nothing from the future (atol 1e-5)")
def causal(learner):
    q, k, v = (torch.randn(1, 2, 6, 16) for _ in range(3))
    _compare(learner, q, k, v, causal_mask(6, 6), "causal mask")


@CHECKS.add("a random mask and 3 queries against 7 keys: equal attention_explicit's (atol 1e-5)")
def random_mask(learner):
    q, k, v = torch.randn(2, 2, 3, 4), torch.randn(2, 2, 7, 4), torch.randn(2, 2, 7, 4)
    mask = torch.rand(2, 1, 3, 7) < 0.5
    mask[..., 0] = True                                   # every query sees at least one key
    _compare(learner, q, k, v, mask, "random mask, Tq=3, Tk=7")


@CHECKS.add("large scores (q, k × 10) with a causal mask: equal attention_explicit's (atol 1e-5)")
def large_scores(learner):
    q, k, v = torch.randn(1, 1, 4, 8) * 10, torch.randn(1, 1, 4, 8) * 10, torch.randn(1, 1, 4, 8)
    _compare(learner, q, k, v, causal_mask(4, 4), "large scores")
