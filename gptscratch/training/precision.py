"""Numeric precision for training: fp32, or bf16 autocast where the hardware makes it pay.

bf16 keeps fp32's 8-bit exponent (same range, no loss scaling needed) with a 7-bit mantissa. Under autocast
the matmuls run in bf16 while weights, gradients and optimizer moments stay fp32 — "mixed precision".
fp16 is never used on CPU: without hardware support it is ~100× slower than fp32 there.

"auto": bf16 on CUDA when supported; on CPU only when the processor has native bf16 instructions
(avx512_bf16 / amx_bf16) *and* the model is at least cpu_bf16_min_width() wide. Measured: on a 2-core Zen 4
(avx512_bf16, no AMX) bf16 autocast made a 6 × 256 model's step ~2× faster but a 4 × 128 one slower — the casts
cost more than the small matmuls save — so the threshold there is 256. On a 2-core Xeon with AMX tiles, once the
fused attention's backward runs in fp32 (gptscratch/model/fused_attention.py), bf16 is 1.4× faster than fp32 at
width 128 and ~9% slower at 64, so with AMX the threshold is 128. Otherwise fp32.
"""

from __future__ import annotations

import contextlib
import functools

PRECISIONS = ("auto", "fp32", "bf16")
CPU_BF16_MIN_WIDTH = 256        # avx512_bf16 without AMX
CPU_AMX_BF16_MIN_WIDTH = 128    # with AMX tiles


@functools.lru_cache(maxsize=1)
def _cpu_flags() -> frozenset[str]:
    """The processor's feature flags (Linux); empty elsewhere, which keeps CPU auto precision at fp32."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return frozenset(handle.read().split())
    except OSError:
        return frozenset()


def cpu_has_native_bf16() -> bool:
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def cpu_has_amx() -> bool:
    return "amx_bf16" in _cpu_flags()


def cpu_bf16_min_width() -> int:
    """The narrowest model for which CPU auto precision picks bf16 (see the module docstring)."""
    return CPU_AMX_BF16_MIN_WIDTH if cpu_has_amx() else CPU_BF16_MIN_WIDTH


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
        wide_enough = d_model is None or d_model >= cpu_bf16_min_width()
        return "bf16" if cpu_has_native_bf16() and wide_enough else "fp32"
    return "fp32"


def autocast(precision: str, device: str):
    """The context manager that runs the forward pass in `precision` ('fp32' → no-op)."""
    import torch

    if precision == "bf16":
        return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()
