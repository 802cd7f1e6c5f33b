"""Choosing the compute device, and the facts about this machine that speed decisions are keyed by.

`resolve_device` turns a user request into a concrete torch device string:

    None / "auto"  ->  $GPTSCRATCH_DEVICE if set (and not "auto"), else cuda > mps > cpu
    "cpu"          ->  "cpu"
    "cuda", "cuda:N", "mps"  ->  itself, if available; otherwise UsageError naming the fix

`machine_key(device)` names the hardware and software a measured speed depends on (processor model, cores
torch uses, torch version; the GPU's name on CUDA): gptscratch.accel caches what it measured under it. Nothing
here *decides* anything from CPU flags — machines with the same flags differ by 25× on the same operation, so
decisions are measured (see gptscratch/accel/).

torch is imported inside the functions so that importing this module (and the CLI) stays cheap.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform

from gptscratch.errors import UsageError

ENV_DEVICE = "GPTSCRATCH_DEVICE"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def check_device_name(requested: str | None) -> None:
    """Reject names that can never be valid, cheaply (no torch import, no availability check)."""
    _validate_name((requested or "auto").strip().lower())


def _validate_name(requested: str) -> tuple[str, int | None]:
    """Split "cuda:1" into ("cuda", 1); reject names we do not support."""
    kind, _, index = requested.partition(":")
    if kind not in DEVICE_CHOICES or (index and (kind != "cuda" or not index.isdigit())):
        raise UsageError(
            f"unknown device {requested!r}; use one of: auto, cpu, cuda, cuda:N, mps"
        )
    return kind, int(index) if index else None


def resolve_device(requested: str | None = None) -> str:
    """Return a concrete device string ("cpu", "cuda", "cuda:N" or "mps").

    Raises UsageError when the request is unknown or the device is not available here.
    """
    requested = (requested or "auto").strip().lower()
    if requested == "auto":
        from_env = os.environ.get(ENV_DEVICE, "").strip().lower()
        if from_env and from_env != "auto":
            requested = from_env
    kind, index = _validate_name(requested)
    if kind == "cpu":
        return "cpu"

    import torch

    cuda_ok = torch.cuda.is_available()
    mps_backend = getattr(torch.backends, "mps", None)
    mps_ok = bool(mps_backend is not None and mps_backend.is_available())

    if kind == "auto":
        if cuda_ok:
            return "cuda"
        if mps_ok:
            return "mps"
        return "cpu"
    if kind == "cuda":
        if not cuda_ok:
            raise UsageError(
                f"device {requested!r} requested but CUDA is not available in this torch "
                "build/machine; use --device cpu (or auto), or install a CUDA build of torch"
            )
        if index is not None:
            count = torch.cuda.device_count()
            if index >= count:
                raise UsageError(
                    f"device 'cuda:{index}' requested but only {count} CUDA device(s) exist; "
                    f"use cuda:0..cuda:{count - 1}"
                )
            return f"cuda:{index}"
        return "cuda"
    # kind == "mps"
    if not mps_ok:
        raise UsageError(
            f"device {requested!r} requested but Apple MPS is not available here; "
            "use --device cpu (or auto)"
        )
    return "mps"


@functools.cache
def cpu_model() -> str:
    """The processor's model name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+", ...), or what platform knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown cpu"


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (Linux; empty elsewhere). For reports only, never for decisions."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def machine_key(device: str) -> str:
    """What a measured speed on `device` depends on: hardware, the threads torch uses, and torch's version."""
    import torch

    if device.startswith("cuda"):
        hardware = torch.cuda.get_device_name(torch.device(device))
    elif device == "mps":
        hardware = f"mps on {cpu_model()}"
    else:
        # The model name alone can hide different processors ("AMD EPYC"): the feature flags tell them apart.
        flags = hashlib.sha256(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:8]
        hardware = f"{cpu_model()} [flags {flags}], {torch.get_num_threads()} threads"
    return f"{hardware} | torch {torch.__version__}"
