"""Checks of exercise 02: the sinusoidal table and the rotary rotation against gptscratch/model/embeddings.py and
kernels.rotate. The angles are computed in float32, where gptscratch's own formula (exp of a log) and the
direct power differ by a few units in the last place: tolerance 1e-4 on values of size 1."""

from __future__ import annotations

import torch

from ...model import kernels
from ...model.embeddings import RotaryEmbedding, SinusoidalPositions
from ..checking import CheckList, Mismatch, expect_close

CHECKS = CheckList()


@CHECKS.add("sinusoidal_positions(0..15, 32) equals SinusoidalPositions (atol 1e-4)")
def sinusoidal(learner):
    positions = torch.arange(16)
    expect_close("sinusoidal_positions(arange(16), 32)", learner.sinusoidal_positions(positions, 32),
                 SinusoidalPositions(32)(positions), atol=1e-4)


@CHECKS.add("sinusoidal_positions(40..47, 64), positions after a cache, equals SinusoidalPositions (atol 1e-4)")
def sinusoidal_offset(learner):
    positions = torch.arange(40, 48)
    expect_close("sinusoidal_positions(arange(40, 48), 64)", learner.sinusoidal_positions(positions, 64),
                 SinusoidalPositions(64)(positions), atol=1e-4)


def _rotary(x, positions, base):
    cos, sin = RotaryEmbedding(x.size(-1), base)(positions, x.dtype)
    return kernels.rotate(x, cos, sin)


@CHECKS.add("rope_rotate of (2, 4, 12, 16) queries equals RotaryEmbedding + kernels.rotate (atol 1e-4)")
def rope(learner):
    x, positions = torch.randn(2, 4, 12, 16), torch.arange(12)
    expect_close("rope_rotate(x, arange(12))", learner.rope_rotate(x, positions), _rotary(x, positions, 10000.0),
                 atol=1e-4)


@CHECKS.add("rope_rotate at positions 20..25 with Llama 3's base 500000 equals gptscratch's (atol 1e-4)")
def rope_offset_base(learner):
    x, positions = torch.randn(1, 2, 6, 8), torch.arange(20, 26)
    expect_close("rope_rotate(x, arange(20, 26), base=500000)", learner.rope_rotate(x, positions, base=500000.0),
                 _rotary(x, positions, 500000.0), atol=1e-4)


@CHECKS.add("after rope_rotate, q·k depends only on the distance: positions (9, 4) score as (5, 0) (atol 1e-4)")
def relative(learner):
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)

    def score(p, s):
        return (learner.rope_rotate(q, torch.tensor([p])) * learner.rope_rotate(k, torch.tensor([s]))).sum()

    far, near = score(9, 4), score(5, 0)
    if not torch.is_tensor(far) or abs(far.item() - near.item()) > 1e-4:
        raise Mismatch(f"q·k at positions (9, 4) should equal q·k at (5, 0): got {float(far):.6g} and "
                       f"{float(near):.6g}")
