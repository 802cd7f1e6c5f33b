"""Which dtype to run inference in: fp32, or bf16 where the hardware makes it pay.

Decoding one token at a time (batch 1) is bound by reading the weights from memory: every step reads all of
them once for a handful of FLOPs each. bf16 halves the bytes (2 instead of 4 per weight), so where the hardware
has native bf16 arithmetic it is close to 2× faster; greedy output agrees with fp32 almost everywhere (tested:
tests/test_generation_engine.py). Unlike training there is no mixed precision here: the weights themselves are
cast, the cache is kept in the same dtype.

"auto": bf16 on CUDA when supported, on CPU only when the processor has native bf16 instructions (avx512_bf16 /
amx_bf16, see gptscratch.training.precision.cpu_has_native_bf16), fp32 otherwise (MPS included).
"""

from __future__ import annotations

INFERENCE_DTYPES = ("auto", "bf16", "fp32")


def resolve_inference_dtype(requested: str, device: str) -> str:
    """'auto' | 'bf16' | 'fp32' → 'bf16' or 'fp32' for `device`. ValueError for an unknown name."""
    if requested not in INFERENCE_DTYPES:
        raise ValueError(f"unknown dtype {requested!r}; choose one of {', '.join(INFERENCE_DTYPES)}")
    # The same hardware rule as training's autocast (no model width: batch-1 decoding is bound by reading the
    # weights, so halving their bytes pays whatever the width).
    from gptscratch.training.precision import resolve_precision

    return resolve_precision(requested, device)


def torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp32": torch.float32}[name]
