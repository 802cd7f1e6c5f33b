"""Checks of exercise 11: top_p_filter against gptscratch/generation/sampling.py and cache_write against
gptscratch/model/kv_cache.py (float32)."""

from __future__ import annotations

import torch

from ...generation.sampling import top_p_filter
from ...model.attention import attention_explicit
from ...model.kv_cache import LayerKVCache
from ..checking import CheckList, Mismatch, expect_close, expect_equal, expect_tensor

CHECKS = CheckList()


def _kept(row) -> list[int]:
    return [int(i) for i in torch.nonzero(row != float("-inf")).flatten()]


def _tokens(ids: list[int]) -> str:
    return f"{len(ids)} token{'' if len(ids) == 1 else 's'} {ids}"


def _top_p(learner, logits, p, label):
    expected = top_p_filter(logits, p)
    got = learner.top_p_filter(logits.clone(), p)
    expect_tensor(f"top_p_filter({label}, p={p})", got, expected)
    for row in range(logits.size(0)):
        want, have = _kept(expected[row]), _kept(got[row])
        if want != have:
            raise Mismatch(f"top_p_filter({label}, p={p}) row {row}: expected to keep {_tokens(want)}, "
                           f"got {_tokens(have)}")
    expect_close(f"the kept logits ({label}, p={p})", got, expected, atol=0.0)


@CHECKS.add("top_p_filter keeps the same tokens as gptscratch's for p = 0.5, 0.9, 0.95 on 4 rows of 50")
def nucleus(learner):
    logits = torch.randn(4, 50) * 2
    for p in (0.5, 0.9, 0.95):
        _top_p(learner, logits, p, "4 × 50 logits")


@CHECKS.add("a confident row keeps only its top token; a flat one keeps most (as gptscratch's)")
def extremes(learner):
    confident = torch.randn(1, 30)
    confident[0, 7] = 20.0
    _top_p(learner, confident, 0.9, "one dominant token")
    _top_p(learner, torch.randn(1, 30) * 0.01, 0.8, "nearly flat")


def _buffers(B, n_kv, max_len, hs):
    return torch.zeros(B, n_kv, max_len, hs), torch.zeros(B, n_kv, max_len, hs)


@CHECKS.add("prefill 5 positions, then 3 single steps: cache_write equals LayerKVCache.append (exact)")
def cache(learner):
    reference = LayerKVCache(2, 3, 12, 4)
    cache_k, cache_v = _buffers(2, 3, 12, 4)
    length = 0
    for step, new in enumerate((5, 1, 1, 1)):
        k, v = torch.randn(2, 3, new, 4), torch.randn(2, 3, new, 4)
        expected_k, expected_v = reference.append(k, v)
        result = learner.cache_write(cache_k, cache_v, length, k, v)
        if not isinstance(result, (tuple, list)) or len(result) != 3:
            raise Mismatch(f"cache_write: expected (keys, values, new_length), got {type(result).__name__}")
        keys, values, length = result
        expect_equal(f"new_length after write {step} ({new} positions)", length, reference.length)
        expect_close(f"keys after write {step}", keys, expected_k, atol=0.0)
        expect_close(f"values after write {step}", values, expected_v, atol=0.0)
    expect_close("the cache_k buffer (written in place)", cache_k, reference.k, atol=0.0)
    expect_close("the cache_v buffer (written in place)", cache_v, reference.v, atol=0.0)


@CHECKS.add("decoding 6 tokens one at a time through cache_write gives full causal attention's output (atol 1e-5)")
def decode(learner):
    q, k, v = (torch.randn(1, 2, 6, 8) for _ in range(3))
    full, _ = attention_explicit(q, k, v)                                    # causal over all 6 at once
    cache_k, cache_v = _buffers(1, 2, 8, 8)
    length, steps = 0, []
    for t in range(6):
        keys, values, length = learner.cache_write(cache_k, cache_v, length, k[:, :, t:t + 1], v[:, :, t:t + 1])
        out, _ = attention_explicit(q[:, :, t:t + 1], keys, values, torch.ones(1, t + 1, dtype=torch.bool))
        steps.append(out)
    expect_close("outputs decoded one token at a time", torch.cat(steps, dim=2), full, atol=1e-5)
