"""Exercise 06 — the block and the full model (docs/lessons/06-block-and-model.md): a solution.

Wire a pre-norm block, stack blocks into a GPT, and count its parameters; then run `gptscratch learn check 06`
(`gptscratch learn hint 06` if stuck). The sub-layers are given to you as callables (the model's own modules),
so this exercise is only about the wiring.
Shapes: B batch, T positions, C = d_model, V vocabulary, N context length, L layers, F = d_ff.
"""

import torch


def pre_norm_block(x, ln_1, attn, ln_2, mlp):
    """One pre-norm transformer block (GPT-2): each sub-layer reads a normalised copy of the residual stream
    and *adds* its output to the stream itself.

        x = x + attn(ln_1(x))
        x = x + mlp(ln_2(x))

    x (B, T, C); ln_1, ln_2, attn, mlp: callables (B, T, C) → (B, T, C). Returns (B, T, C).
    Reference: gptscratch/model/block.py, `Block.forward` (pre-norm, sequential).
    """
    x = x + attn(ln_1(x))
    return x + mlp(ln_2(x))


def gpt_logits(idx, tok_table, pos_table, blocks, ln_f):
    """The whole GPT-2 forward pass, with tied output weights:

        x₀      = E[idx] + P[0 … T−1]          token rows plus position rows   (B, T, C)
        x_{l+1} = blocks[l](x_l)               l = 0 … L−1
        logits  = ln_f(x_L) Eᵀ                 the output layer *is* the embedding table, transposed   (B, T, V)

    idx (B, T) token ids; tok_table E (V, C); pos_table P (N, C) with T ≤ N; blocks: a list of callables
    (B, T, C) → (B, T, C); ln_f: a callable, the final LayerNorm. Returns logits (B, T, V).
    Reference: gptscratch/model/gpt.py, `GPT.forward`.
    """
    T = idx.size(1)
    x = tok_table[idx] + pos_table[torch.arange(T)]
    for block in blocks:
        x = block(x)
    return ln_f(x) @ tok_table.T


def parameter_count(vocab_size, context_length, n_layer, d_model, d_ff=None, tie_weights=True):
    """The number of trainable parameters of a GPT-2-style model (learned positions, biases everywhere,
    LayerNorms with γ and β):

        embeddings   V·C + N·C                      token table, position table
        per block    qkv 3C² + 3C, output C² + C    attention
                     C·F + F + F·C + C              the MLP, F = d_ff (4·C when None)
                     2 · 2C                         two LayerNorms
        final norm   2C
        output layer 0 when tied to the token table, V·C when not

    With F = 4C and tied weights this is V·C + N·C + L·(12C² + 13C) + 2C. Returns an int.
    Reference: gptscratch/model/gpt.py, `GPT.num_parameters`; the formula in gptscratch/model/config.py.
    """
    C, F = d_model, d_ff or 4 * d_model
    block = (3 * C * C + 3 * C) + (C * C + C) + (C * F + F + F * C + C) + 4 * C
    total = vocab_size * C + context_length * C + n_layer * block + 2 * C
    return total if tie_weights else total + vocab_size * C
