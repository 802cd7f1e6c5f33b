"""Named sampling settings for `gptscratch generate --preset`.

    creative   temperature 1.0, top-p 0.95            varied, surprising, sometimes off the rails
    balanced   temperature 0.8, top-k 50, top-p 0.9   the default: fluent with some variety
    precise    temperature 0.3, top-k 10              close to greedy, focused and repetitive
Any explicit --temperature / --top-k / --top-p overrides the preset's value.
"""

from __future__ import annotations

PRESETS: dict[str, dict] = {
    "creative": {"temperature": 1.0, "top_k": None, "top_p": 0.95},
    "balanced": {"temperature": 0.8, "top_k": 50, "top_p": 0.9},
    "precise": {"temperature": 0.3, "top_k": 10, "top_p": None},
}
DEFAULT_PRESET = "balanced"
