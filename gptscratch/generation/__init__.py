"""Generation: sampling strategies (sampling.py), named presets (presets.py), the batched cached decoding loop
(engine.py), text-level completion with stop strings and timing (completion.py, text.py) and the choice of
inference precision (precision.py). Faster one-row kernels come from gptscratch/accel/decoding.py.

Names are loaded on first use (PEP 562), so `gptscratch.generation.presets` — which the command line reads for
its help and guided mode — imports without torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Decoder": "engine", "generate_batch": "engine", "generate_ids": "engine",
    "COMPARE_STRATEGIES": "presets", "DEFAULT_PRESET": "presets", "PRESETS": "presets",
    "SamplingConfig": "sampling", "apply_repetition_penalty": "sampling", "sample_next": "sampling",
    "top_k_filter": "sampling", "top_p_filter": "sampling",
    "StopMatcher": "text", "TextStream": "text",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
