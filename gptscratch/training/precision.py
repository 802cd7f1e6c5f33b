"""Numeric precision for training: fp32, or bf16 autocast where it is faster on this machine.

bf16 keeps fp32's 8-bit exponent (same range, no loss scaling needed) with a 7-bit mantissa. Under autocast
the matmuls run in bf16 while weights, gradients and optimizer moments stay fp32 — "mixed precision"
(Micikevicius et al. 2018). fp16 is never used on CPU: without hardware support it is ~100× slower than fp32.

"auto":
    CUDA   bf16 when the GPU supports it (every recent GPU trains faster in bf16), else fp32;
    CPU    whichever of the two trains this model shape faster on this processor, *measured* by a short timing
           the first time and remembered (gptscratch/accel/precision.py) — CPUs differ too much for a rule:
           bf16 training has been measured 2× faster on one and 25× slower on another. With accel switched off
           (--no-accel) nothing is measured and auto is fp32;
    MPS    fp32.
"""

from __future__ import annotations

import contextlib

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(precision: str, device: str, model_config=None, batch_size: int = 8) -> str:
    """The concrete precision for `precision` on `device`. For CPU auto, `model_config` (and the micro-batch
    size) say which shape to time; without a config CPU auto is fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    if precision != "auto":
        return precision
    from ..accel.precision import auto_precision, training_precision

    measure = None if model_config is None else (lambda: training_precision(model_config, batch_size))
    return auto_precision(device, measure)


def autocast(precision: str, device: str):
    """The context manager that runs the forward pass in `precision` ('fp32' → no-op)."""
    import torch

    if precision == "bf16":
        return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()
