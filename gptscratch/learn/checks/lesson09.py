"""Checks of exercise 09: adamw_step against torch.optim.AdamW as gptscratch's build_optimizer sets it up, and
learning_rate against gptscratch/training/schedule.py (float32 weights: tolerance 1e-6 after several steps)."""

from __future__ import annotations

import torch

from ...training.optimizer import build_optimizer
from ...training.schedule import learning_rate
from ..checking import CheckList, Mismatch, expect_close, expect_number

CHECKS = CheckList()


def _step(learner, param, grad, m, v, step, lr, betas, weight_decay):
    result = learner.adamw_step(param.clone(), grad.clone(), m.clone(), v.clone(), step, lr, betas=betas,
                                eps=1e-8, weight_decay=weight_decay)
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise Mismatch(f"adamw_step: expected (param, m, v), got {type(result).__name__}")
    return result


@CHECKS.add("5 steps on a (6, 4) matrix equal torch.optim.AdamW's weights and moments (lr 0.01, λ 0.1; atol 1e-6)")
def five_steps(learner):
    weight = torch.nn.Parameter(torch.randn(6, 4))
    optimizer = torch.optim.AdamW([weight], lr=0.01, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    param, m, v = weight.detach().clone(), torch.zeros(6, 4), torch.zeros(6, 4)
    for step in range(1, 6):
        grad = torch.randn(6, 4) * 0.1
        weight.grad = grad.clone()
        optimizer.step()
        param, m, v = _step(learner, param, grad, m, v, step, 0.01, (0.9, 0.95), 0.1)
        expect_close(f"the weight after step {step}", param, weight.detach(), atol=1e-6)
    state = optimizer.state[weight]
    expect_close("m after 5 steps", m, state["exp_avg"], atol=1e-6)
    expect_close("v after 5 steps", v, state["exp_avg_sq"], atol=1e-6)


@CHECKS.add("3 steps of build_optimizer on a Linear: its matrix decays, its bias does not (atol 1e-6)")
def gptscratch_groups(learner):
    layer = torch.nn.Linear(4, 3)
    optimizer = build_optimizer(layer, lr=3e-3, weight_decay=0.1, betas=(0.9, 0.99), device="cpu")
    ours = {name: [p.detach().clone(), torch.zeros_like(p), torch.zeros_like(p)]
            for name, p in layer.named_parameters()}
    for step in range(1, 4):
        grads = {name: torch.randn_like(p) for name, p in layer.named_parameters()}
        for name, p in layer.named_parameters():
            p.grad = grads[name].clone()
        optimizer.step()
        for name, p in layer.named_parameters():
            decay = 0.1 if p.dim() >= 2 else 0.0
            ours[name] = _step(learner, *ours[name][:1], grads[name], *ours[name][1:], step, 3e-3, (0.9, 0.99),
                               decay)
            expect_close(f"{name} after step {step} (λ = {decay})", ours[name][0], p.detach(), atol=1e-6)


@CHECKS.add("learning_rate equals schedule.learning_rate through warmup, cosine and past the end (rel 1e-9)")
def schedule(learner):
    settings = [dict(warmup=0.05, min_lr_ratio=0.1), dict(warmup=0.2, min_lr_ratio=0.0),
                dict(warmup=0.0, min_lr_ratio=0.5)]
    for kwargs in settings:
        for progress in (-0.1, 0.0, 0.01, 0.05, 0.1, 0.2, 0.5, 0.9, 1.0, 1.3):
            expect_number(f"learning_rate({progress}, 3e-3, warmup={kwargs['warmup']}, "
                          f"min_lr_ratio={kwargs['min_lr_ratio']})",
                          learner.learning_rate(progress, 3e-3, **kwargs), learning_rate(progress, 3e-3, **kwargs),
                          rel=1e-9)
