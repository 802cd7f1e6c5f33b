"""Exercise 10 — gradient clipping, the guard against loss spikes (docs/lessons/10-training-dynamics.md): a
solution.

One unusual batch can produce a huge gradient and throw the weights far away (a spike in the loss curve).
The trainer measures the norm of all the gradients together and scales them down when it is too large
(`--grad-clip`, 1 by default). Write it, then run `gptscratch learn check 10` (`gptscratch learn hint 10`).
"""

import torch


def clip_grad_norm(grads, max_norm):
    """Clip a list of gradient tensors by their global norm:

        norm = √(Σ over every tensor of Σ g²)             one number for all the gradients together
        if norm > max_norm:  every g ← g · max_norm / (norm + 1e-6)
        otherwise:           unchanged

    grads: a list of tensors (any shapes); max_norm: a float (math.inf: measure, never clip). Returns
    (clipped, norm): a list of tensors of the same shapes, and the norm *before* clipping as a float.
    Reference: torch.nn.utils.clip_grad_norm_, which gptscratch/training/trainer.py (`Trainer.train_step`)
    calls before each optimizer step; the norm it returns is the `grad_norm` of the training log.
    """
    norm = torch.sqrt(sum((g.float() ** 2).sum() for g in grads)).item()
    scale = min(1.0, max_norm / (norm + 1e-6))
    return [g * scale for g in grads], norm
