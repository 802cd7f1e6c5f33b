"""Exercise 02 — positions (docs/lessons/02-positions.md).

Attention alone does not know the order of the tokens. Write the sinusoidal table of the 2017 transformer and
the rotary embedding (RoPE) of Llama, then run `gptscratch learn check 02`; `gptscratch learn hint 02` if stuck.
Shapes: T positions, C = d_model, nh heads, hs head width.
"""

import torch


def sinusoidal_positions(positions, d_model, base=10000.0):
    """The fixed position table: for each position t and each pair i = 0 … C/2 − 1 of dimensions,

        P[t, 2i]     = sin(t / base^(2i/C))
        P[t, 2i + 1] = cos(t / base^(2i/C))

    positions (T,) integers (not necessarily starting at 0: with a KV cache they continue from the cache's
    length); d_model C even. Returns (T, C) float32.
    Reference: gptscratch/model/embeddings.py, `SinusoidalPositions`.
    """
    raise NotImplementedError


def rope_rotate(x, positions, base=10000.0):
    """Rotary position embedding, "rotate-half" layout (GPT-NeoX, Llama): turn each pair of dimensions of
    every head by an angle proportional to its position.

        θ_i = base^(−2i/hs)                   i = 0 … hs/2 − 1
        a   = t · θ_i                          t: the position of the row
        x1, x2 = x[..., :hs/2], x[..., hs/2:]  pair i is (x1[i], x2[i])
        out = cat(x1 cos a − x2 sin a,  x2 cos a + x1 sin a)

    x (B, nh, T, hs) queries or keys, hs even; positions (T,) integers. Returns a tensor of x's shape.
    Reference: gptscratch/model/embeddings.py, `RotaryEmbedding` (the angles), and gptscratch/model/kernels.py,
    `rotate` (the rotation).
    """
    raise NotImplementedError
