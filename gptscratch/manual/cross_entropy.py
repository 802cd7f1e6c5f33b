"""Cross-entropy over the vocabulary with its backward pass written out by hand (and the logit soft cap before it).

Forward, for logits z (N, V) and target ids t (N,); rows whose target is −1 are ignored (padding):

    log p_i = z_i − log Σ_j e^(z_j)                  log-softmax (computed as z − max − log Σ e^(z − max))
    ℓ_n     = −log p_{t_n}                           the surprise of the right answer at row n
    L       = (1/M) Σ_{n kept} ℓ_n                   M = number of kept rows

Backward. For one row, ∂ℓ/∂z_i = p_i − [i = t]: the predicted distribution minus the one-hot target.

    ∂L/∂z = (softmax(z) − onehot(t)) / M             (N, V)      zero on ignored rows

This is the gradient that starts every backward pass of a language model: it pushes the right token's logit up
and every other logit down in proportion to the probability the model gave it. Its rows sum to zero, so adding
a constant to all logits (which does not change the softmax) gets no gradient. Saved: the probabilities (N, V).
"""

from __future__ import annotations

import torch


class CrossEntropyFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, targets, ignore_index: int = -1):
        keep = targets != ignore_index                                         # (N,)
        shifted = logits - logits.amax(-1, keepdim=True)
        log_probs = shifted - shifted.exp().sum(-1, keepdim=True).log()       # (N, V)
        safe_targets = targets.clamp_min(0)
        nll = -log_probs.gather(1, safe_targets.unsqueeze(1)).squeeze(1)      # (N,)
        count = keep.sum()
        ctx.save_for_backward(log_probs.exp(), safe_targets, keep, count)
        # No kept rows gives 0/0 = nan, as F.cross_entropy does.
        return (nll * keep).sum() / count

    @staticmethod
    def backward(ctx, grad_out):
        probs, targets, keep, count = ctx.saved_tensors
        grad = probs.clone()
        grad[torch.arange(grad.size(0), device=grad.device), targets] -= 1.0  # softmax − one-hot
        # Divide in the logits' dtype: bool / int64 would make a float32 1/M and cost float64 its precision.
        grad = grad * (keep.to(grad.dtype) / count.to(grad.dtype)).unsqueeze(1)
        return grad * grad_out, None, None


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -1) -> torch.Tensor:
    """Mean −log softmax(logits)[target] over rows whose target is not ignore_index (hand-written backward)."""
    return CrossEntropyFunction.apply(logits, targets, ignore_index)


class SoftcapFunction(torch.autograd.Function):
    """y = c · tanh(z / c), the logit soft cap; ∂L/∂z = g ⊙ (1 − tanh²(z / c)) = g ⊙ (1 − (y / c)²)."""

    @staticmethod
    def forward(ctx, logits, cap: float):
        capped = cap * torch.tanh(logits / cap)
        ctx.save_for_backward(capped)
        ctx.cap = cap
        return capped

    @staticmethod
    def backward(ctx, grad_out):
        (capped,) = ctx.saved_tensors
        return grad_out * (1.0 - (capped / ctx.cap) ** 2), None


def softcap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """c · tanh(logits / c) with the hand-written backward above."""
    return SoftcapFunction.apply(logits, cap)
