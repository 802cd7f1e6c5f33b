"""Checks of exercise 06: the block's wiring, the whole forward pass and the parameter count, against
gptscratch/model/block.py and gpt.py (float32; the block's weights drawn with std 0.3; tolerance 1e-5)."""

from __future__ import annotations

import torch

from ...model import GPT, ModelConfig
from ..checking import CheckList, expect_close, expect_equal, randomized, tiny_model

CHECKS = CheckList()


@CHECKS.add("pre_norm_block with the model's own sub-layers equals Block.forward (atol 1e-5 + rtol 1e-5)")
def block(learner):
    block = randomized(tiny_model().blocks[0], 0.3)
    x = torch.randn(2, 6, 32)
    with torch.no_grad():
        expected = block(x)
        got = learner.pre_norm_block(x, block.ln_1, block.attn, block.ln_2, block.mlp)
    expect_close("pre_norm_block(x, …)", got, expected, atol=1e-5, rtol=1e-5)


@CHECKS.add("gpt_logits with the model's tables, blocks and final norm equals GPT.forward (atol 1e-5 + rtol 1e-5)")
def whole_model(learner):
    model = randomized(tiny_model(), 0.3)
    with torch.no_grad():
        model.tok_embed.weight.mul_(0.3)                      # keep the tied logits of size ≈ 1
        idx = torch.randint(0, 101, (2, 9))
        expected, _ = model(idx)
        got = learner.gpt_logits(idx, model.tok_embed.weight, model.pos_embed.table.weight, list(model.blocks),
                                 model.ln_f)
    expect_close("gpt_logits(idx, …)", got, expected, atol=1e-5, rtol=1e-5)


def _count(**shape) -> int:
    return GPT(ModelConfig(n_head=4, **shape)).num_parameters()   # small shapes: built in milliseconds


@CHECKS.add("parameter_count equals GPT.num_parameters for four shapes, untied and custom d_ff included (exact)")
def count(learner):
    shapes = [dict(vocab_size=320, context_length=128, n_layer=2, d_model=64),
              dict(vocab_size=1000, context_length=256, n_layer=1, d_model=256),
              dict(vocab_size=101, context_length=32, n_layer=3, d_model=32, tie_weights=False),
              dict(vocab_size=257, context_length=64, n_layer=2, d_model=48, d_ff=100)]
    for shape in shapes:
        expect_equal(f"parameter_count({', '.join(f'{k}={v}' for k, v in shape.items())})",
                     learner.parameter_count(**shape), _count(**shape))


@CHECKS.add("parameter_count of GPT-2 small (V 50257, N 1024, 12 layers of 768) is 124,439,808 (exact)")
def gpt2_small(learner):
    # GPT.num_parameters of this shape, as lesson 6 asserts (building it would take ~1 s).
    expect_equal("parameter_count(50257, 1024, 12, 768)", learner.parameter_count(50257, 1024, 12, 768),
                 124_439_808)
