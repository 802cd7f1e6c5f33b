"""Checks of exercise 13: the logit lens against gptscratch/interpret/logit_lens.py and the induction score
against gptscratch/interpret/induction.py (float32)."""

from __future__ import annotations

import torch

from ...interpret.cache import run_with_cache
from ...interpret.induction import induction_stripe
from ...interpret.logit_lens import lens_logits
from ..checking import CheckList, expect_close, tiny_model

CHECKS = CheckList()


def _lens_inputs():
    model = tiny_model()
    with torch.no_grad():
        model.tok_embed.weight.mul_(20)                        # logits of size ≈ 1, not ≈ 0.02
        model.ln_f.weight.copy_(torch.randn(32))
        model.ln_f.bias.copy_(torch.randn(32))
    names = [f"blocks.{i}.hook_resid_pre" for i in range(2)] + ["blocks.1.hook_resid_post"]
    logits, cache = run_with_cache(model, torch.randint(0, 101, (2, 10)), names)
    stack, _ = cache.accumulated_resid(apply_ln=False)          # (3, B, T, C): before block 0, 1, after block 1
    weights = (model.ln_f.weight.detach(), model.ln_f.bias.detach(), model.lm_head.weight.detach(), model.ln_f.eps)
    return model, cache, logits, stack, weights


@CHECKS.add("logit_lens of every layer's residual stream equals lens_logits (atol 1e-5 + rtol 1e-5)")
def lens(learner):
    model, cache, _, stack, (gamma, beta, unembed, eps) = _lens_inputs()
    expected, labels = lens_logits(model, cache)
    got = learner.logit_lens(stack, gamma, beta, unembed, eps)
    expect_close(f"logit_lens(stack of {', '.join(labels)})", got, expected, atol=1e-5, rtol=1e-5)


@CHECKS.add("logit_lens of the last block's output is the model's own output (atol 1e-5 + rtol 1e-5)")
def last_layer(learner):
    _, _, logits, stack, (gamma, beta, unembed, eps) = _lens_inputs()
    expect_close("logit_lens(final residual stream)", learner.logit_lens(stack[-1], gamma, beta, unembed, eps),
                 logits, atol=1e-5, rtol=1e-5)


def _patterns(B, nh, T):
    scores = torch.randn(B, nh, T, T).masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    return torch.softmax(scores * 3, dim=-1)


@CHECKS.add("induction_score of random causal patterns equals induction_stripe, with and without bos (atol 1e-6)")
def stripe(learner):
    for length, offset in ((6, 1), (5, 0)):
        pattern = _patterns(3, 4, offset + 2 * length)
        expected = induction_stripe(pattern[None], length, offset)[0]
        expect_close(f"induction_score(pattern, length={length}, offset={offset})",
                     learner.induction_score(pattern, length, offset), expected, atol=1e-6)


@CHECKS.add("a perfect induction head scores 1, a previous-token head 0 (as induction_stripe; atol 1e-6)")
def perfect(learner):
    length, offset = 5, 1
    T = offset + 2 * length
    induction, previous = torch.zeros(T, T), torch.zeros(T, T)
    for q in range(T):
        previous[q, max(q - 1, 0)] = 1.0
        induction[q, q - length + 1 if q >= offset + length else q] = 1.0
    pattern = torch.stack([induction, previous])[None]          # (1, 2, T, T): head 0 induction, head 1 previous
    expected = induction_stripe(pattern[None], length, offset)[0]
    expect_close("induction_score(perfect heads)", learner.induction_score(pattern, length, offset), expected,
                 atol=1e-6)
