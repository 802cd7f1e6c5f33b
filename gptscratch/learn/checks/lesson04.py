"""Checks of exercise 04: causal_mask and multi_head_attention against gptscratch/model/attention.py (float32;
the layer's weights are drawn with std 0.3 so its outputs are of size ≈ 1; tolerance 1e-5)."""

from __future__ import annotations

import torch

from ...model import ModelConfig
from ...model.attention import CausalSelfAttention, causal_mask
from ..checking import CheckList, Mismatch, expect_close, expect_equal, randomized

CHECKS = CheckList()


@CHECKS.add("causal_mask equals gptscratch's for (4, 4), (1, 5), (3, 7), (6, 6) (exact, bool)")
def mask(learner):
    for query_len, key_len in ((4, 4), (1, 5), (3, 7), (6, 6)):
        got, expected = learner.causal_mask(query_len, key_len), causal_mask(query_len, key_len)
        if not torch.is_tensor(got) or got.dtype != torch.bool:
            raise Mismatch(f"causal_mask({query_len}, {key_len}): expected a bool tensor, got "
                           f"{getattr(got, 'dtype', type(got).__name__)}")
        expect_equal(f"causal_mask({query_len}, {key_len})", got.int().tolist(), expected.int().tolist())


def _layer(n_head: int, d_model: int = 32) -> CausalSelfAttention:
    return randomized(CausalSelfAttention(ModelConfig(vocab_size=64, context_length=16, n_head=n_head,
                                                       d_model=d_model)), 0.3)


def _compare(learner, n_head: int, x):
    layer = _layer(n_head, x.size(-1))
    with torch.no_grad():
        expected = layer(x)
    got = learner.multi_head_attention(x, layer.qkv.weight.detach(), layer.qkv.bias.detach(),
                                       layer.proj.weight.detach(), layer.proj.bias.detach(), n_head)
    expect_close(f"multi_head_attention(x, …, n_head={n_head})", got, expected, atol=1e-5, rtol=1e-5)


@CHECKS.add("4 heads of 8 on (2, 7, 32): equals CausalSelfAttention (atol 1e-5 + rtol 1e-5)")
def four_heads(learner):
    _compare(learner, 4, torch.randn(2, 7, 32))


@CHECKS.add("1 head of 32 and 8 heads of 4: equal CausalSelfAttention (atol 1e-5 + rtol 1e-5)")
def other_heads(learner):
    _compare(learner, 1, torch.randn(1, 5, 32))
    _compare(learner, 8, torch.randn(1, 5, 32))


@CHECKS.add("causal: changing positions 4… leaves the outputs at 0…3 unchanged (atol 1e-6)")
def causality(learner):
    layer = _layer(4)
    weights = [p.detach() for p in (layer.qkv.weight, layer.qkv.bias, layer.proj.weight, layer.proj.bias)]
    x = torch.randn(1, 8, 32)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 4, 32)
    before = learner.multi_head_attention(x, *weights, 4)
    after = learner.multi_head_attention(changed, *weights, 4)
    expect_close("outputs at positions 0…3 after changing 4…7", after[:, :4], before[:, :4], atol=1e-6)
