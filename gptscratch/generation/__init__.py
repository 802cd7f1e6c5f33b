"""Generation: sampling strategies (sampling.py), named presets (presets.py) and the cached decoding loop
(engine.py)."""

from .engine import TextStream, generate_ids
from .presets import DEFAULT_PRESET, PRESETS
from .sampling import SamplingConfig, sample_next, top_k_filter, top_p_filter

__all__ = ["DEFAULT_PRESET", "PRESETS", "SamplingConfig", "TextStream", "generate_ids", "sample_next",
           "top_k_filter", "top_p_filter"]
