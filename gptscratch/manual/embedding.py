"""Embedding lookup with its backward pass written out by hand.

Forward: a table W (V, D) and integer ids idx (any shape S):

    y[s] = W[idx[s]]                                   (S..., D)    a row copy per position

Backward. Row v of W appears in the output once for every position whose id is v, and each copy passes its
gradient straight through (∂y[s]/∂W[v] = 1 when idx[s] = v, else 0), so

    ∂L/∂W[v] = Σ_{s : idx[s] = v} g[s]                 (V, D)      rows of unused ids stay 0

— a scatter-add (`index_add_`), the transpose of the gather. The ids are integers: they have no gradient.
This is why a large vocabulary costs little in the backward pass of the *input* embedding (only used rows are
touched), while the tied output layer (a full matmul against W) touches every row.
"""

from __future__ import annotations

import torch


class EmbeddingFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, idx, weight):
        ctx.save_for_backward(idx)
        ctx.num_rows = weight.size(0)
        return weight[idx]

    @staticmethod
    def backward(ctx, grad_out):
        (idx,) = ctx.saved_tensors
        rows = grad_out.reshape(-1, grad_out.size(-1))                        # (N, D)
        grad_w = rows.new_zeros(ctx.num_rows, rows.size(1))
        grad_w.index_add_(0, idx.reshape(-1), rows)
        return None, grad_w


def embedding(idx: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """weight[idx] with the hand-written scatter-add backward above."""
    return EmbeddingFunction.apply(idx, weight)
