"""Exercise 09 — the optimizer step and the learning-rate schedule (docs/lessons/09-training-loop.md).

Write one AdamW update and the warmup + cosine schedule, then run `gptscratch learn check 09`
(`gptscratch learn hint 09` if stuck).
"""

import math

import torch


def adamw_step(param, grad, m, v, step, lr, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1):
    """One AdamW update (Loshchilov & Hutter 2019) of one parameter tensor, step t = `step` counted from 1:

        m ← β₁ m + (1 − β₁) g                 v ← β₂ v + (1 − β₂) g²           running means of g and g²
        m̂ = m / (1 − β₁ᵗ)                     v̂ = v / (1 − β₂ᵗ)                bias correction (early steps)
        w ← w − lr · (m̂ / (√v̂ + ε) + λ w)                                      λ = weight_decay, "decoupled":
                                                                               it uses w before this step

    param, grad, m, v: tensors of one shape (m, v start as zeros). Returns the new (param, m, v); changing the
    inputs in place as well is allowed. gptscratch decays only matrices: its trainer passes λ = 0 for biases
    and norm gains.
    Reference: gptscratch/training/optimizer.py, `build_optimizer` (torch.optim.AdamW with those groups).
    """
    raise NotImplementedError


def learning_rate(progress, peak, warmup=0.05, min_lr_ratio=0.1):
    """The learning rate at `progress` p (the fraction of the run done, clamped to [0, 1]):

        p < warmup:   peak · max(p / warmup, 0.001)              linear warmup (never exactly 0)
        otherwise:    floor + (peak − floor) · ½ (1 + cos(π · (p − warmup) / (1 − warmup)))
        floor = min_lr_ratio · peak

    Returns a float. Reference: gptscratch/training/schedule.py, `learning_rate`.
    """
    raise NotImplementedError
