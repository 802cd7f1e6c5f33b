"""Generation speed of a model: prefill, cached decoding and full recomputation, and peak memory.

    prefill tokens/s   one forward pass over a prompt of `prefill_tokens` tokens (parallel over positions)
    decode tokens/s    new tokens per second with the KV cache, prefill excluded
    cached / uncached  tokens/s for `length` new tokens, prefill included, with the cache and without it
                       (uncached re-runs the whole context every token: O(L²) instead of O(L))
Greedy decoding on a fixed random prompt; each figure is the median of `repeats` runs. Peak memory is the
process's peak resident set on CPU (it only grows, so it bounds every phase) or the peak allocated CUDA memory.
Decoding past the context length slides the window (engine.py), so lengths beyond it are still valid.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

from gptscratch.generation.engine import Decoder
from gptscratch.generation.sampling import SamplingConfig

GREEDY = SamplingConfig(temperature=0)


def peak_memory_mb(device: str) -> float | None:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        import resource
        import sys

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10   # bytes on macOS, KiB on Linux
    except ImportError:  # Windows
        return None


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_decoding(model, prompt: list[int], new_tokens: int, use_cache: bool) -> tuple[float, float]:
    """(seconds for prefill, seconds for the new_tokens decoding steps after it)."""
    device = str(model.tok_embed.weight.device)
    _sync(device)
    started = time.perf_counter()
    decoder = Decoder(model, [prompt], GREEDY, use_cache=use_cache)
    _sync(device)
    prefilled = time.perf_counter()
    for _ in range(new_tokens):
        decoder.step()
    _sync(device)
    return prefilled - started, time.perf_counter() - prefilled


def bench_generation(model, lengths: Sequence[int] | None = None, prompt_tokens: int = 16,
                     prefill_tokens: int | None = None, repeats: int = 3, uncached: bool = True,
                     progress: Callable[[dict], None] | None = None) -> dict:
    """Speed figures for `model` (see the module docstring) as a JSON-ready dict."""
    config = model.config
    device = str(model.tok_embed.weight.device)
    lengths = list(lengths or sorted({max(config.context_length // 4, 1), max(config.context_length // 2, 1),
                                      max(config.context_length - prompt_tokens, 1)}))
    generator = torch.Generator().manual_seed(0)
    random_prompt = lambda n: torch.randint(0, config.vocab_size, (n,), generator=generator).tolist()  # noqa: E731
    prompt = random_prompt(min(prompt_tokens, config.context_length))
    time_decoding(model, prompt, 2, True)                                   # warm-up: first calls are slow
    total = len(lengths) * (2 if uncached else 1) + 1
    done = 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress({"completed": done, "total": total, "unit": "runs"})

    rows = []
    for length in lengths:
        row = {"new_tokens": length}
        for mode in (("cached", "uncached") if uncached else ("cached",)):
            runs = [time_decoding(model, prompt, length, mode == "cached") for _ in range(repeats)]
            row[f"{mode}_tokens_per_second"] = length / statistics.median(p + d for p, d in runs)
            if mode == "cached":
                row["decode_tokens_per_second"] = length / statistics.median(d for _, d in runs)
            tick()
        if uncached:
            row["speedup"] = row["cached_tokens_per_second"] / row["uncached_tokens_per_second"]
        rows.append(row)

    prefill_len = min(prefill_tokens or config.context_length, config.context_length)
    long_prompt = random_prompt(prefill_len)
    prefill = statistics.median(time_decoding(model, long_prompt, 0, True)[0] for _ in range(repeats))
    tick()
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    return {"parameters": model.num_parameters(), "dtype": str(model.tok_embed.weight.dtype).removeprefix("torch."),
            "device": device, "threads": torch.get_num_threads(), "prompt_tokens": len(prompt),
            "prefill_tokens": prefill_len, "prefill_tokens_per_second": prefill_len / prefill,
            "weight_bytes": weights, "lengths": rows, "peak_memory_mb": peak_memory_mb(device)}
