"""Generation: sampling strategies (sampling.py), named presets (presets.py), the batched cached decoding loop
(engine.py), text-level completion with stop strings and timing (completion.py, text.py) and the choice of
inference precision (precision.py). Faster one-row kernels come from gptscratch/accel/decoding.py."""

from .engine import Decoder, generate_batch, generate_ids
from .presets import COMPARE_STRATEGIES, DEFAULT_PRESET, PRESETS
from .sampling import SamplingConfig, apply_repetition_penalty, sample_next, top_k_filter, top_p_filter
from .text import StopMatcher, TextStream

__all__ = ["COMPARE_STRATEGIES", "DEFAULT_PRESET", "Decoder", "PRESETS", "SamplingConfig", "StopMatcher",
           "TextStream", "apply_repetition_penalty", "generate_batch", "generate_ids", "sample_next",
           "top_k_filter", "top_p_filter"]
