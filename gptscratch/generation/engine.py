"""Autoregressive generation with a KV cache: prefill the prompts once, then decode one token per step.

    prefill:  run the prompts (B, T) through the model, filling each layer's key/value cache;
              the last position's logits give the first new token.                  O(T²·d) once
    decode:   feed only the newest token per row (B, 1); attention reads the cached keys/values of
              everything before it.                                                   O(L·d) per token
Without the cache every new token recomputes the whole sequence: O(L²) per token instead of O(L).

Prompts of different lengths share one batch by *left-padding*: row b gets pad_b = T − len_b filler tokens in
front, so every row's newest token sits in the same (last) column and one (B, 1) step decodes them all. Padding
must be invisible, which takes two things:
    positions  row b counts from its first real token: position = column − pad_b (not the column index);
    mask       no query may attend to a padding key: allowed[b, q, k] = causal(q, k) and real[b, k].
A padding query gets its own key as well (allowed[b, q, q] = True), so no softmax row is entirely −inf (NaN
would leak into real rows through 0 · NaN). When all rows have the same length neither is needed and the fast
mask-free attention path runs. Tests check that batched generation gives the same tokens as one prompt at a time.

`num_samples` K > 1: the B prompts are prefilled once, then each cache row is copied K times
(KVCache.repeat_rows) and the B·K rows decode independently — row b·K + k is sample k of prompt b.

Randomness: each row draws from its own torch.Generator seeded with seed + k (k = sample number), so prompt b
samples the same text whether it is generated alone or in a batch, and K samples of one prompt differ.

Rows may differ in how they sample: `sampling` is one SamplingConfig for every row, or one per row (a server's
requests each bring their own temperature and top-p); rows that share a config are drawn together. A caller that
rebuilds a batch mid-generation (gptscratch/serve/scheduler.py) passes each row's text so far and its `generators`,
so a row continues with the same random stream it started with.

One row (one prompt, one sample) with a cache decodes with the kernels of gptscratch/accel/decoding.py: the
model's own forward, with each one-row matrix product computed by the kernel this machine streams fastest
(measured once). `--no-accel` (GPTSCRATCH_ACCEL=0) makes every step PyTorch's default kernels.

Sliding window: a model attends over at most `context_length` tokens. When the cache is full, every row keeps
the most recent half of its text, the cache is re-filled from it (one prefill) and decoding continues — long
outputs never crash, at the price of forgetting what slid out. A prompt longer than the window keeps its last
tokens.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from ..accel.decoding import decoding_kernels
from ..model import kernels
from .sampling import SamplingConfig, apply_repetition_penalty, sample_next

PAD_ID = 0  # any valid id: padded positions are masked out and their outputs never read
MEASURE = object()  # Decoder's default for row_kernels: prepare the one-row kernels of accel/decoding.py itself


def padded_batch(rows: list[list[int]], device) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Left-pad `rows` into (idx (B, T), positions (B, T) or None, real (B, T) bool or None).

    positions/real are None when every row has the same length (nothing to hide)."""
    lengths = torch.tensor([len(r) for r in rows], device=device)
    width = int(lengths.max())
    idx = torch.tensor([[PAD_ID] * (width - len(r)) + r for r in rows], device=device)
    if bool((lengths == width).all()):
        return idx, None, None
    pads = (width - lengths).unsqueeze(1)                                 # (B, 1)
    columns = torch.arange(width, device=device).unsqueeze(0)             # (1, T)
    return idx, (columns - pads).clamp(min=0), columns >= pads


def padding_mask(real_keys: torch.Tensor, query_len: int) -> torch.Tensor:
    """(B, 1, Tq, Tk) bool: causal, never a padding key, but every query may see itself (no all −inf rows)."""
    key_len = real_keys.size(1)
    offset = key_len - query_len
    q = torch.arange(query_len, device=real_keys.device).unsqueeze(1) + offset
    k = torch.arange(key_len, device=real_keys.device).unsqueeze(0)
    allowed = (k <= q) & (real_keys.unsqueeze(1) | (k == q))              # (B, Tq, Tk)
    return allowed.unsqueeze(1)


class Decoder:
    """Batched decoding state: the model, its cache, every row's tokens and random generator.

    Usage: `tokens = decoder.step(active)` samples one token for each active row (None for the others) and feeds
    them to the model, ready for the next step. Rows are prompt-major: row b·K + k is sample k of prompt b.
    """

    def __init__(self, model, prompts: list[list[int]], sampling: SamplingConfig | Sequence[SamplingConfig], *,
                 num_samples: int = 1, seed: int | None = None, vocab_limit: int | None = None,
                 use_cache: bool = True, generators: Sequence[torch.Generator] | None = None,
                 row_kernels=MEASURE):
        if not prompts or any(not p for p in prompts):
            raise ValueError("generation needs at least one prompt token per prompt "
                             "(use the end-of-text id to start fresh)")
        self.model = model.eval()
        self.vocab_limit = vocab_limit
        self.device = model.tok_embed.weight.device
        self.context = model.config.context_length
        self.rows = [list(p) for p in prompts for _ in range(num_samples)]
        self.samplings = list(sampling) if isinstance(sampling, Sequence) else [sampling] * len(self.rows)
        if len(self.samplings) != len(self.rows) or (generators is not None and len(generators) != len(self.rows)):
            raise ValueError("give one sampling config and one generator per row (prompts × num_samples)")
        self.generators = list(generators) if generators is not None else []
        for _ in prompts if generators is None else ():
            for k in range(num_samples):
                generator = torch.Generator(device=self.device)
                generator.manual_seed(seed + k) if seed is not None else generator.seed()
                self.generators.append(generator)
        self.cache = model.new_kv_cache(batch=len(prompts)) if use_cache else None
        # One row with a cache: one-row products through the fastest kernel measured here (accel/decoding.py).
        # A caller that builds many decoders over fixed weights (a server) prepares them once: `row_kernels`.
        self.step_kernels = None
        if len(self.rows) == 1 and use_cache:
            self.step_kernels = decoding_kernels(model) if row_kernels is MEASURE else row_kernels
        self.real: torch.Tensor | None = None      # (rows, cache slots) True where a slot holds a real token
        self.next_positions: torch.Tensor | None = None
        self.seen = None
        if any(config.repetition_penalty != 1.0 for config in self.samplings):
            vocab = model.config.vocab_size
            self.seen = torch.zeros(len(self.rows), vocab, dtype=torch.bool, device=self.device)
            for row, ids in enumerate(self.rows):
                self.seen[row, torch.tensor(ids, device=self.device)] = True
        # Prefill each distinct prompt once; with K samples the cache rows are then copied K times.
        logits = self._prefill([p[-self.context:] for p in prompts])
        if num_samples > 1:
            logits = logits.repeat_interleave(num_samples, dim=0)
            if self.cache is not None:
                self.cache.repeat_rows(num_samples)
                if self.real is not None:
                    self.real = self.real.repeat_interleave(num_samples, dim=0)
                    self.next_positions = self.next_positions.repeat_interleave(num_samples, dim=0)
        self.logits = logits                                                # (rows, V) for the next token
        self.pending: list[int] | None = None   # chosen but not yet fed: the last token is never fed at all

    @torch.inference_mode()
    def _prefill(self, windows: list[list[int]]) -> torch.Tensor:
        """Run `windows` (left-padded) from an empty cache; return the last position's logits (B, V)."""
        idx, positions, real = padded_batch(windows, self.device)
        mask = padding_mask(real, idx.size(1)) if real is not None else None
        if self.cache is not None:
            self.cache.reset()
            if real is not None:
                self.real = torch.zeros(idx.size(0), self.cache.max_len, dtype=torch.bool, device=self.device)
                self.real[:, : idx.size(1)] = real
                self.next_positions = positions[:, -1:] + 1
            else:
                self.real = self.next_positions = None
        logits, _ = self.model(idx, kv_cache=self.cache, positions=positions, mask=mask, only_last=True)
        return logits[:, -1]

    @torch.inference_mode()
    def step(self, active: list[bool] | None = None) -> list[int | None]:
        """Feed the previous step's tokens, then choose the next token of every active row (None for others)."""
        if self.pending is not None:
            self._advance(self.pending)
        logits = self.logits
        if self.vocab_limit is not None and self.vocab_limit < logits.size(-1):
            logits = logits.clone()
            logits[:, self.vocab_limit:] = float("-inf")   # padded rows of the vocabulary are never real tokens
        active = active or [True] * len(self.rows)
        chosen = [PAD_ID] * len(self.rows)
        for config, members in self._groups(active):
            group = logits if len(members) == len(self.rows) else logits[members]
            if config.repetition_penalty != 1.0:
                group = apply_repetition_penalty(group.float(), self.seen[members], config.repetition_penalty)
            drawn = sample_next(group, config, [self.generators[i] for i in members]).tolist()
            for i, token in zip(members, drawn):
                chosen[i] = token
        for row, token in zip(self.rows, chosen):
            row.append(token)
        if self.seen is not None:
            self.seen[torch.arange(len(chosen)), torch.tensor(chosen, device=self.device)] = True
        self.pending = chosen
        return [token if a else None for token, a in zip(chosen, active)]

    def _groups(self, active: list[bool]) -> list[tuple[SamplingConfig, list[int]]]:
        """The rows to draw for, grouped by sampling config. Only active rows draw: a finished row must not consume
        random numbers (greedy rows draw none, so all of them go in one batched argmax)."""
        groups: dict[SamplingConfig, list[int]] = {}
        for i, (config, is_active) in enumerate(zip(self.samplings, active)):
            if is_active or config.greedy:
                groups.setdefault(config, []).append(i)
        return list(groups.items())

    def _advance(self, tokens: list[int]) -> None:
        if self.cache is None:
            self.logits = self._prefill([row[-self.context:] for row in self.rows])
        elif self.cache.length >= self.cache.max_len:
            self.logits = self._prefill([row[-(self.context // 2):] for row in self.rows])  # slide
        else:
            idx = torch.tensor(tokens, device=self.device).unsqueeze(1)      # (rows, 1)
            positions = mask = None
            if self.real is not None:  # padded rows: per-row positions, and hide the padding keys
                slot = self.cache.length
                self.real[:, slot] = True
                positions, mask = self.next_positions, self.real[:, None, None, : slot + 1]
                self.next_positions = self.next_positions + 1
            step_kernels = kernels.use(self.step_kernels) if self.step_kernels else contextlib.nullcontext()
            with step_kernels:
                logits, _ = self.model(idx, kv_cache=self.cache, positions=positions, mask=mask)
            self.logits = logits[:, -1]


def generate_ids(model, prompt_ids: list[int], max_new_tokens: int, sampling: SamplingConfig,
                 seed: int | None = None, stop_ids: tuple[int, ...] = (), vocab_limit: int | None = None,
                 use_cache: bool = True) -> Iterator[int]:
    """One prompt: yield up to max_new_tokens new ids, stopping early (without yielding) at any of stop_ids."""
    if max_new_tokens <= 0:
        return
    decoder = Decoder(model, [prompt_ids], sampling, seed=seed, vocab_limit=vocab_limit, use_cache=use_cache)
    for _ in range(max_new_tokens):
        token = decoder.step()[0]
        if token in stop_ids:
            return
        yield token


def generate_batch(model, prompts: list[list[int]], max_new_tokens: int, sampling: SamplingConfig, *,
                   num_samples: int = 1, seed: int | None = None, stop_ids: tuple[int, ...] = (),
                   vocab_limit: int | None = None, use_cache: bool = True) -> list[list[int]]:
    """Several prompts at once: the new ids of every row (prompt-major, num_samples rows per prompt)."""
    decoder = Decoder(model, prompts, sampling, num_samples=num_samples, seed=seed, vocab_limit=vocab_limit,
                      use_cache=use_cache)
    outputs: list[list[int]] = [[] for _ in decoder.rows]
    active = [max_new_tokens > 0] * len(outputs)
    for _ in range(max_new_tokens):
        for i, token in enumerate(decoder.step(active)):
            if token is None:
                continue
            if token in stop_ids:
                active[i] = False
            else:
                outputs[i].append(token)
        if not any(active):
            break
    return outputs
