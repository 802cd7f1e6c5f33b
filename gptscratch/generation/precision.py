"""Which dtype to run inference in: fp32, or bf16 where it is faster on this machine.

Decoding one token at a time (batch 1) is bound by reading the weights from memory: every step reads all of
them once for a handful of FLOPs each. bf16 halves the bytes (2 instead of 4 per weight), so it is often close
to 2× faster — but not everywhere, so on CPU it is measured (gptscratch/accel/precision.py, remembered per
machine and model shape). Greedy output agrees with fp32 almost everywhere (tests/test_generation_engine.py).
Unlike training there is no mixed precision here: the weights themselves are cast, the cache is kept in the
same dtype.

"auto": bf16 on CUDA when supported; on CPU the measured faster of the two (fp32 when accel is switched off
with --no-accel, or when no model shape is known); fp32 on MPS.
"""

from __future__ import annotations

INFERENCE_DTYPES = ("auto", "bf16", "fp32")


def resolve_inference_dtype(requested: str, device: str, model_config=None) -> str:
    """'auto' | 'bf16' | 'fp32' → 'bf16' or 'fp32' for `device` (and, for CPU auto, the model's shape)."""
    if requested not in INFERENCE_DTYPES:
        raise ValueError(f"unknown dtype {requested!r}; choose one of {', '.join(INFERENCE_DTYPES)}")
    if requested != "auto":
        return requested
    from ..accel.precision import auto_precision, decoding_dtype

    measure = None if model_config is None else (lambda: decoding_dtype(model_config))
    return auto_precision(device, measure)


def torch_dtype(name: str):
    import torch

    return {"bf16": torch.bfloat16, "fp32": torch.float32}[name]


def load_for_inference(checkpoint, device: str, requested: str = "auto"):
    """Load `checkpoint` (a path, run or pretrained name; None = the latest run) on `device` in the dtype
    `requested` resolves to for that model → (gptscratch.checkpoint.Checkpoint, 'bf16' or 'fp32')."""
    from ..checkpoint import load_checkpoint, read_model_config, resolve_checkpoint

    path = resolve_checkpoint(checkpoint)
    config = read_model_config(path) if requested == "auto" and device == "cpu" else None
    chosen = resolve_inference_dtype(requested, device, config)
    return load_checkpoint(path, device=device, dtype=torch_dtype(chosen) if chosen != "fp32" else None), chosen
