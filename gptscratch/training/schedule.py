"""The learning-rate schedule: linear warmup, then cosine decay to a floor.

    progress p ∈ [0, 1]   (steps done / max steps, or seconds spent / time budget — whichever is further)
    p < w:     lr = peak · p / w                                  warmup (w = warmup fraction, 5% by default)
    p ≥ w:     lr = floor + (peak − floor) · ½(1 + cos(π · (p − w) / (1 − w)))
    floor = min_lr_ratio · peak (10% by default)

The trainer applies it to each param group's own peak (`peak_lr`: --lr for AdamW, --muon-lr for Muon's
matrices), so with --optimizer muon both rise and decay along one curve and keep their ratio.

Why warm up: at step 0 Adam's second-moment estimates are poor and the loss landscape is steep; small steps
first avoid an early blow-up. Why decay: late in training a smaller step averages out gradient noise and
lowers the loss further. Expressing the schedule in *progress* rather than steps lets a wall-clock budget
(`--max-time 2m`) drive the same curve as a step budget.
"""

from __future__ import annotations

import math


def learning_rate(progress: float, peak: float, warmup: float = 0.05, min_lr_ratio: float = 0.1) -> float:
    progress = min(max(progress, 0.0), 1.0)
    if warmup > 0 and progress < warmup:
        return peak * max(progress / warmup, 1e-3)  # never exactly 0, so step 0 still moves
    floor = peak * min_lr_ratio
    decay = (progress - warmup) / max(1.0 - warmup, 1e-9)
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * decay))
