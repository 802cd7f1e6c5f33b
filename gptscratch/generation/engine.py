"""Autoregressive generation with a KV cache: prefill the prompt once, then decode one token at a time.

    prefill:  run the whole prompt (B, T) through the model, filling each layer's key/value cache;
              the last position's logits give the first new token.                  O(T²·d) once
    decode:   feed only the newest token (B, 1); attention reads the cached keys/values of everything
              before it.                                                              O(L·d) per token
Without the cache every new token would recompute the whole sequence: O(L²) per token instead of O(L).

Sliding window: a model attends over at most `context_length` tokens. When the cache is full, generation keeps
the most recent half of the text, re-fills the cache from it and continues — so arbitrarily long outputs never
crash, at the price of forgetting what slid out. A prompt longer than the window keeps its last tokens.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import torch

from .sampling import SamplingConfig, sample_next


@torch.no_grad()
def generate_ids(model, prompt_ids: list[int], max_new_tokens: int, sampling: SamplingConfig,
                 seed: int | None = None, stop_ids: tuple[int, ...] = (), vocab_limit: int | None = None,
                 use_cache: bool = True) -> Iterator[int]:
    """Yield up to max_new_tokens new token ids, stopping early (without yielding) at any of stop_ids."""
    if not prompt_ids:
        raise ValueError("generation needs at least one prompt token (use the end-of-text id to start fresh)")
    model.eval()
    device = model.tok_embed.weight.device
    context = model.config.context_length
    generator = torch.Generator(device=device)
    if seed is not None:
        generator.manual_seed(seed)
    else:
        generator.seed()
    ids = list(prompt_ids)
    cache = model.new_kv_cache(batch=1) if use_cache else None

    def prefill(window: list[int]) -> torch.Tensor:
        if cache is not None:
            cache.reset()
        logits, _ = model(torch.tensor([window], device=device), kv_cache=cache, only_last=True)
        return logits[:, -1]

    logits = prefill(ids[-context:])
    for _ in range(max_new_tokens):
        if vocab_limit is not None and vocab_limit < logits.size(-1):
            logits[:, vocab_limit:] = float("-inf")  # padded rows of the vocabulary are never real tokens
        token = int(sample_next(logits, sampling, generator)[0])
        if token in stop_ids:
            return
        yield token
        ids.append(token)
        if cache is None:
            logits = prefill(ids[-context:])
        elif cache.length >= context:
            logits = prefill(ids[-(context // 2):])   # slide: keep the newest half
        else:
            logits, _ = model(torch.tensor([[token]], device=device), kv_cache=cache)
            logits = logits[:, -1]


class TextStream:
    """Turns token ids into text pieces as they arrive, never splitting a UTF-8 character.

    A byte-level token can be half of 'é'; the incremental decoder holds such bytes until the character is
    complete. Invalid sequences become U+FFFD rather than an error.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, token: int) -> str:
        return self.decoder.decode(self.tokenizer.decode_bytes([token]))

    def flush(self) -> str:
        return self.decoder.decode(b"", final=True)
