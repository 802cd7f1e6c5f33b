"""Exercise 13 — interpretability: the logit lens and the induction score (docs/lessons/13-interpretability.md):
a solution.

Read a prediction out of the middle of the model, and measure how much an attention head behaves like an
induction head; then run `gptscratch learn check 13` (`gptscratch learn hint 13` if stuck).
Shapes: S read points, B batch, T positions, C = d_model, V vocabulary, nh heads.
"""

import torch


def logit_lens(resid, norm_weight, norm_bias, unembed, eps=1e-5):
    """What the model would predict if it stopped here: the final LayerNorm and the output layer applied to a
    residual stream taken after any block (nostalgebraist 2020):

        logits = LayerNorm(resid; γ = norm_weight, β = norm_bias, ε) · unembedᵀ

    resid (..., C) — e.g. (S, B, T, C), a stack of the residual stream after each block; norm_weight,
    norm_bias (C,): the model's final norm `ln_f`; unembed (V, C): the output layer's weight (the token
    embedding, when tied). The LayerNorm's statistics are those of each row of `resid` itself.
    Returns (..., V).
    Reference: gptscratch/interpret/logit_lens.py, `lens_logits` (through ActivationCache.accumulated_resid).
    """
    raise NotImplementedError


def induction_score(pattern, length, offset=1):
    """How strongly each head attends like an induction head on a sequence [bos] S S with |S| = length:
    a query in the second copy should look at the token *after* the earlier occurrence of its own token.

        queries  q = offset + length … offset + 2·length − 1       the second copy (offset = 1 with a bos)
        key      q − length + 1                                    the token after q's earlier occurrence
        score_h  = mean over q and over the batch of pattern[b, h, q, q − length + 1]

    pattern (B, nh, T, T): the attention weights of one layer (rows = queries, summing to 1),
    T = offset + 2·length. Returns (nh,).
    Reference: gptscratch/interpret/induction.py, `induction_stripe` (the same for every layer at once).
    """
    raise NotImplementedError
