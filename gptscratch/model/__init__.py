"""The teaching core: a GPT written out in PyTorch, one concept per file. Imports only torch and the standard
library, and only public PyTorch APIs.

Read in this order:
    config.py       ModelConfig: every architectural decision as a field, and the named sizes
    kernels.py      the elementary operations (linear, norm, attention, rotation, activations, loss), swappable
    layers.py       Linear and Embedding computed through those kernels
    embeddings.py   positions: learned, sinusoidal, rotary angles
    norms.py        LayerNorm
    attention.py    causal multi-head self-attention, written out and fused
    kv_cache.py     the KV cache used for generation
    feedforward.py  the MLP
    hooks.py        HookPoint: named activations for interpretability
    block.py        one transformer block: the wiring
    gpt.py          the whole model

`from gptscratch.model import ModelConfig, SIZES` does not import torch (the names are loaded on first use), so
the command line can derive its flags from the config and still start instantly.
"""

from __future__ import annotations

import importlib

# name → the module that defines it; loaded on first access (PEP 562).
_EXPORTS = {
    "ModelConfig": "config", "SIZES": "config", "model_config": "config", "pad_vocab": "config",
    "GPT": "gpt", "KVCache": "kv_cache", "attention_explicit": "attention", "causal_mask": "attention",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
