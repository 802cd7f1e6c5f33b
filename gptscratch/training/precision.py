"""Numeric precision for training: fp32, or bf16 autocast where the hardware makes it pay.

bf16 keeps fp32's 8-bit exponent (same range, no loss scaling needed) with a 7-bit mantissa. Under autocast
the matmuls run in bf16 while weights, gradients and optimizer moments stay fp32 — "mixed precision".
fp16 is never used on CPU: without hardware support it is ~100× slower than fp32 there.

"auto": bf16 on CUDA when supported; on CPU only when the processor has native bf16 instructions
(avx512_bf16 / amx_bf16), where it measured faster; otherwise fp32.
"""

from __future__ import annotations

import contextlib
import functools

PRECISIONS = ("auto", "fp32", "bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = handle.read()
    except OSError:
        return False  # not Linux: stay with fp32 unless asked
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    import torch

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if precision != "auto":
        return precision
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu":
        return "bf16" if cpu_has_native_bf16() else "fp32"
    return "fp32"


def autocast(precision: str, device: str):
    """The context manager that runs the forward pass in `precision` ('fp32' → no-op)."""
    import torch

    if precision == "bf16":
        return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()
