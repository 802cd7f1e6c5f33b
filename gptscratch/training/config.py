"""TrainConfig: every knob of a training run, the presets, and budget parsing.

A preset is a named set of TrainConfig values; any flag the user passes overrides the preset's value, so
`--preset quick --max-time 30s` is the quick recipe with a shorter budget. The effective config is saved in
every checkpoint (trainer_state.json), which is what makes `--resume` able to continue the same run.

Tokens per optimizer step = batch_size × context_length × grad_accum.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace

from ..errors import UsageError


@dataclass(frozen=True)
class TrainConfig:
    data: str = "builtin"
    """A prepared dataset's name or any source `gptscratch data prepare` accepts."""
    tokenizer: str = "byte"
    size: str = "small"
    """A named model shape (gptscratch.model.SIZES); `model` overrides individual fields."""
    model: dict = field(default_factory=dict)
    """ModelConfig overrides, e.g. {"n_layer": 4, "positional": "rope"}."""
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: float = 0.05
    """Warmup as a fraction of the run (progress, see schedule.py)."""
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    max_steps: int | None = None
    max_time: float | None = None
    """Wall-clock budget in seconds (training time; evaluation and saving included)."""
    eval_every: int = 100
    eval_batches: int = 20
    save_every: int | None = None
    """Checkpoint interval in steps; None saves at each evaluation and at the end."""
    log_every: int = 10
    seed: int = 1337
    precision: str = "auto"

    def __post_init__(self) -> None:
        positive = ("batch_size", "grad_accum", "eval_every", "eval_batches", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.lr <= 0:
            raise UsageError(f"--lr must be positive (got {self.lr})")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"--warmup is a fraction of the run in [0, 1) (got {self.warmup})")
        if self.max_steps is not None and self.max_steps < 1:
            raise UsageError(f"--max-steps must be at least 1 (got {self.max_steps})")
        if self.max_time is not None and self.max_time <= 0:
            raise UsageError(f"--max-time must be positive (got {self.max_time})")
        if self.max_steps is None and self.max_time is None:
            raise UsageError("give the run a budget: --max-steps N and/or --max-time DURATION (e.g. 2m)")
        if self.grad_clip < 0 or self.weight_decay < 0:
            raise UsageError("--grad-clip and --weight-decay cannot be negative")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


# Presets. quick: chosen by measurement on a 2-core CPU (see README "What the quick preset trains"):
# byte-level tokens keep the output layer tiny (257 ids vs 100k for cl100k, where the LM head is ~80% of a
# step), and a 4-layer × 192-wide model at context 128 learns the builtin corpus's shape within two minutes.
PRESETS: dict[str, dict] = {
    "quick": dict(data="builtin", tokenizer="byte", size="mini",
                  model={"d_model": 192, "n_head": 4, "n_layer": 4, "context_length": 128},
                  batch_size=16, lr=2e-3, warmup=0.03, max_time=110.0, eval_every=100, eval_batches=10),
}


def preset_config(preset: str | None, **overrides) -> TrainConfig:
    """The TrainConfig of a preset (or the defaults), with every non-None override applied."""
    base: dict = {}
    if preset is not None:
        if preset not in PRESETS:
            raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
        base = dict(PRESETS[preset])
    model = {**base.pop("model", {}), **(overrides.pop("model", None) or {})}
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(model=model, **base)


_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}


def parse_duration(text: str | float | None) -> float | None:
    """'90' / '90s' / '3m' / '1.5h' → seconds."""
    if text is None or isinstance(text, (int, float)):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", str(text))
    if not match:
        raise UsageError(f"cannot read duration {text!r}; use seconds or a unit, e.g. 90s, 3m, 1h")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]
