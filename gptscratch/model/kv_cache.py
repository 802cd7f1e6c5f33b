"""The KV cache: what makes generating one token cost O(L) instead of O(L²).

When a model generates, the keys and values of the tokens it has already seen never change (a token only attends
to earlier tokens, so its k and v depend on nothing that comes later). Recomputing them for every new token
would cost a full forward pass over the whole text per token. Instead each layer keeps them:

    prefill      run the prompt (B, T) once; each layer writes its k, v (B, nh, T, hs) into slots 0 .. T−1
    decode step  feed only the newest token (B, 1); each layer writes its k, v into slot L and attends its one
                 query to slots 0 .. L                                          O(L · d) per layer and token

The buffers are preallocated to (B, n_kv, max_len, hs) — only the key/value heads: with grouped-query attention
(attention.py) the cache is n_head / n_kv times smaller — so decoding never reallocates or copies what is cached.
`LayerKVCache.append` is the one place that writes to the cache (attention.py calls it).
"""

from __future__ import annotations

import torch


class LayerKVCache:
    """One layer's keys and values: k, v (B, n_kv, max_len, hs), of which the first `length` slots are filled."""

    def __init__(self, batch: int, n_head: int, max_len: int, head_dim: int, device=None, dtype=None):
        shape = (batch, n_head, max_len, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v (B, n_kv, T, hs) at slots [length, length + T); return every filled slot (B, n_kv, length,
        hs)."""
        start, end = self.length, self.length + k.size(2)
        self.k[:, :, start:end] = k
        self.v[:, :, start:end] = v
        self.length = end
        return self.k[:, :, :end], self.v[:, :, :end]


class KVCache:
    """The cache of a whole model: one LayerKVCache per block."""

    def __init__(self, config, batch: int, max_len: int | None = None, device=None, dtype=None):
        self.max_len = max_len or config.context_length
        self.layers = [LayerKVCache(batch, config.kv_heads, self.max_len, config.head_dim, device, dtype)
                       for _ in range(config.n_layer)]

    @property
    def length(self) -> int:
        """Positions filled so far (the same in every layer between forward passes)."""
        return self.layers[0].length

    def reset(self) -> None:
        """Forget everything cached (the buffers are kept and overwritten)."""
        for layer in self.layers:
            layer.length = 0

    def repeat_rows(self, repeats: int) -> None:
        """Turn each of the B cached rows into `repeats` consecutive copies (B·repeats rows): several samples
        continue one prefilled prompt without recomputing it."""
        for layer in self.layers:
            layer.k = layer.k.repeat_interleave(repeats, dim=0)
            layer.v = layer.v.repeat_interleave(repeats, dim=0)
