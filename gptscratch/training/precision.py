"""Numeric precision for training: fp32, or bf16 autocast where the hardware makes it pay.

bf16 keeps fp32's 8-bit exponent (same range, no loss scaling needed) with a 7-bit mantissa. Under autocast
the matmuls run in bf16 while weights, gradients and optimizer moments stay fp32 — "mixed precision".
fp16 is never used on CPU: without hardware support it is ~100× slower than fp32 there.

"auto": bf16 on CUDA when supported; on CPU only when the processor has native bf16 instructions
(avx512_bf16 / amx_bf16) *and* the model is at least CPU_BF16_MIN_WIDTH wide. Measured on a 2-core Zen 4:
bf16 autocast made a 6 × 256 model's step ~2× faster, but a 4 × 128 one slower — at that width the casts
cost more than the small matmuls save. Otherwise fp32.
"""

from __future__ import annotations

import contextlib
import functools

PRECISIONS = ("auto", "fp32", "bf16")
CPU_BF16_MIN_WIDTH = 256


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False  # not Linux: stay with fp32 unless asked
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str, d_model: int | None = None) -> str:
    """The concrete precision for `precision` on `device`; d_model (when known) lets CPU auto skip bf16 for
    models too narrow to gain from it."""
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu":
        wide_enough = d_model is None or d_model >= CPU_BF16_MIN_WIDTH
        return "bf16" if cpu_has_native_bf16() and wide_enough else "fp32"
    return "fp32"


def autocast(precision: str, device: str):
    """The context manager that runs the forward pass in `precision` ('fp32' → no-op)."""
    import torch

    if precision == "bf16":
        return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()
