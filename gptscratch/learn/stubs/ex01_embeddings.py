"""Exercise 01 — tokens and embeddings (docs/lessons/01-tokens-and-embeddings.md).

Text becomes byte ids, and each id becomes a row of the embedding table E (V, C). Write the three functions,
then run `gptscratch learn check 01`; `gptscratch learn hint 01` if you are stuck.
Shapes: B batch, T positions, V vocabulary, C = d_model.
"""

import torch


def byte_encode(text):
    """The byte tokenizer's ids: the UTF-8 bytes of `text`, each an integer 0 … 255.

        "Hé" → [72, 195, 169]          (é is two bytes in UTF-8)

    Returns a list of ints. Reference: gptscratch/tokenizers/byte.py, `ByteTokenizer.encode`.
    """
    raise NotImplementedError


def one_hot(ids, vocab_size):
    """One-hot vectors: out[b, t, i] = 1.0 if ids[b, t] == i else 0.0.

    ids (B, T) integers in 0 … V−1 → (B, T, V) float32.
    Reference: torch.nn.functional.one_hot (as floats); lesson 1's "x[t] = onehot(ids[t]) · E".
    """
    raise NotImplementedError


def embed(ids, table):
    """The embedding lookup: x[b, t] = E[ids[b, t]], the row of the table for each id.

    ids (B, T) integers, table E (V, C) → x (B, T, C). Gradients must flow back into `table` (use torch
    operations on it, no .detach() or .tolist()).
    Reference: gptscratch/model/layers.py, `Embedding` (the model's `tok_embed`).
    """
    raise NotImplementedError
