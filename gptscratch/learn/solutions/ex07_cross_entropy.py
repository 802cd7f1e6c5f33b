"""Exercise 07 — logits, softmax and cross-entropy (docs/lessons/07-logits-and-loss.md): a solution.

Write the loss every language model is trained on, and the gradient that starts its backward pass; then run
`gptscratch learn check 07` (`gptscratch learn hint 07` if stuck).
Shapes: N = B·T positions (flattened), V vocabulary.
"""

import torch


def cross_entropy(logits, targets):
    """The mean cross-entropy over the positions whose target is not −1 (padding, ignored):

        log p = z − max(z) − log Σ_j exp(z_j − max(z))          stable log-softmax of each row
        loss  = −(1/M) Σ_{n: t_n ≠ −1} log p_n[t_n]             M = number of kept rows

    Subtracting the row maximum changes nothing mathematically but keeps exp() from overflowing: logits of
    1000 must work. logits (N, V) float; targets (N,) int64 in 0 … V−1 or −1. Returns a scalar tensor.
    Reference: gptscratch/model/kernels.py, `cross_entropy` (the model's loss), and
    gptscratch/manual/cross_entropy.py, `CrossEntropyFunction.forward`.
    """
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    log_probs = shifted - torch.logsumexp(shifted, dim=-1, keepdim=True)
    keep = targets != -1
    picked = log_probs[keep].gather(1, targets[keep].unsqueeze(1)).squeeze(1)
    return -picked.mean()


def cross_entropy_grad(logits, targets):
    """∂loss/∂logits for the loss above, written out (no autograd):

        ∂loss/∂z_n = (softmax(z_n) − onehot(t_n)) / M     on kept rows
                   = 0                                   on rows whose target is −1

    logits (N, V); targets (N,). Returns (N, V).
    Reference: gptscratch/manual/cross_entropy.py, `CrossEntropyFunction.backward`.
    """
    keep = targets != -1
    grad = torch.softmax(logits, dim=-1)
    rows = torch.arange(logits.size(0))[keep]
    grad[rows, targets[keep]] -= 1.0
    return grad * keep.unsqueeze(1) / keep.sum()
