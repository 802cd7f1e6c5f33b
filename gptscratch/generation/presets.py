"""Named sampling settings for `gptscratch generate --preset`, and the line-up of `generate --compare`.

    creative   temperature 1.0, top-p 0.95            varied, surprising, sometimes off the rails
    balanced   temperature 0.8, top-k 50, top-p 0.9   the default: fluent with some variety
    precise    temperature 0.3, top-k 10              close to greedy, focused and repetitive
Any explicit --temperature / --top-k / --top-p / --repetition-penalty overrides the preset's value.

COMPARE_STRATEGIES isolates one idea per row (pure greedy, pure temperature, top-k alone, top-p alone, the
penalty) before the presets that combine them, so a side-by-side table shows what each knob does.
"""

from __future__ import annotations

from ..errors import UsageError

PRESETS: dict[str, dict] = {
    "creative": {"temperature": 1.0, "top_k": None, "top_p": 0.95},
    "balanced": {"temperature": 0.8, "top_k": 50, "top_p": 0.9},
    "precise": {"temperature": 0.3, "top_k": 10, "top_p": None},
}
DEFAULT_PRESET = "balanced"

COMPARE_STRATEGIES: dict[str, dict] = {
    "greedy": {"temperature": 0.0},
    "greedy + repetition 1.3": {"temperature": 0.0, "repetition_penalty": 1.3},
    "temperature 1.0": {"temperature": 1.0},
    "top-k 40": {"temperature": 1.0, "top_k": 40},
    "top-p 0.9": {"temperature": 1.0, "top_p": 0.9},
    **{f"preset {name}": values for name, values in PRESETS.items()},
}


def preset_sampling(preset: str, **overrides) -> dict:
    """The sampling values of `preset` with every override that is not None applied on top (the knobs a person
    set explicitly win). UsageError for an unknown preset."""
    if preset not in PRESETS:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return {**PRESETS[preset], **{key: value for key, value in overrides.items() if value is not None}}
