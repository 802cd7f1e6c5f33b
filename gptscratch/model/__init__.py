"""The teaching core: a GPT written out in PyTorch, one concept per file. Imports only torch.

Read in this order: config.py → embeddings.py → attention.py → feedforward.py → block.py → gpt.py
(hooks.py is the small mechanism that lets interpretability tools observe activations; fused_attention.py picks
the precision of the fused attention kernel's CPU backward pass under bf16 — a speed detail, not new maths).
"""

from .attention import KVCache, attention_explicit, causal_mask
from .config import SIZES, ModelConfig, model_config, pad_vocab
from .gpt import GPT

__all__ = ["GPT", "KVCache", "ModelConfig", "SIZES", "attention_explicit", "causal_mask", "model_config",
           "pad_vocab"]
