"""TrainConfig: every knob of a training run, the presets, recipe files, and budget parsing.

Precedence, lowest first: TrainConfig defaults < preset (+ its variant for the tokenizer in use) < `--config
FILE` < command-line flags. So `--preset quick --max-time 30s` is the quick recipe with a shorter budget.
The effective config is saved in every checkpoint (trainer_state.json), which is what makes `--resume`
able to continue the same run.

Tokens per optimizer step = batch_size × context_length × grad_accum (global: under torchrun the
grad_accum micro-batches are divided across the ranks, so the step is the same size whatever N).
"""

from __future__ import annotations

import functools
import re
import typing
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..errors import UsageError
from .value_types import MODEL_FIELD_TYPES, coerce_number, value_problem


OPTIMIZERS = ("adamw", "muon")
STAGES = ("pretrain", "sft")


@dataclass(frozen=True)
class TrainConfig:
    data: str = "builtin"
    """A prepared dataset's name or any source `gptscratch data prepare` accepts."""
    tokenizer: str | None = None
    """None: the data source's default (byte for local text, cl100k_base for the Hub, the task vocabulary)."""
    size: str = "small"
    """A named model shape (gptscratch.model.SIZES); `model` overrides individual fields."""
    model: dict = field(default_factory=dict)
    """ModelConfig overrides, e.g. {"n_layer": 4, "positional": "rope"}."""
    init_from: str | None = None
    """Start from these weights (a checkpoint or run folder, a run name, a pretrained name) — fine-tuning."""
    batch_size: int = 16
    """Sequences per micro-batch (per process under torchrun)."""
    grad_accum: int = 1
    """Micro-batches per optimizer step, in total over all processes."""
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: float = 0.05
    """Warmup as a fraction of the run (progress, see schedule.py)."""
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    optimizer: str = "adamw"
    """adamw, or muon: Muon for the blocks' matrices, AdamW for embeddings, output layer and vectors (optimizer.py)."""
    muon_lr: float = 0.02
    """Muon's peak learning rate (--optimizer muon); the schedule scales it and --lr alike."""
    grad_clip: float = 1.0
    max_steps: int | None = None
    max_time: float | None = None
    """Wall-clock budget in seconds (training time; evaluation and saving included)."""
    max_tokens: int | None = None
    eval_every: int = 100
    eval_batches: int = 20
    sample_tokens: int = 64
    """Length of the sample generated at each evaluation (0: none)."""
    save_every: int | None = None
    """Checkpoint interval in steps; None saves at each evaluation and at the end."""
    log_every: int = 10
    seed: int = 1337
    precision: str = "auto"
    compile: bool | None = None
    """torch.compile the model; None = on for CUDA, off elsewhere (on CPU it costs 30–45 s and gained nothing)."""
    debug: bool = False
    """Anomaly detection + per-step gradient/activation statistics (slow; for NaN hunting)."""
    manual_backward: bool = False
    """Backpropagate through gptscratch.manual's hand-written layer backwards (fp32, one process; for learning)."""
    stage: str = "pretrain"
    """pretrain (next token on every position of a text stream) or sft (conversations; loss on the assistant's
    tokens only: `gptscratch train sft`, gptscratch/training/sft.py)."""
    chat_template: str = "auto"
    """sft: auto (the model's own template when its tokenizer files have one, else gptscratch's), gptscratch,
    or a Jinja template file."""
    lora_rank: int = 0
    """LoRA rank r (0: off, every weight trains). With r > 0 only the adapters train (gptscratch/model/lora.py)."""
    lora_alpha: float = 16.0
    """LoRA's α: the adapter's output is scaled by α / r."""
    lora_dropout: float = 0.0
    """Dropout on the adapter's input (LoRA only)."""
    lora_targets: str = "qkv,proj,gate,up,down"
    """Comma-separated linear layers inside the blocks that get adapters: qkv, proj, gate, up, down."""
    fsdp: bool = False
    """Under torchrun: shard weights, gradients and optimizer state across the processes (FSDP) instead of
    replicating them (DDP)."""

    def __post_init__(self) -> None:
        # Types first (a recipe file can hold anything: lr = "abc"; every check below compares numbers), and
        # finite floats.
        hints = field_types()
        values = [(f.name, getattr(self, f.name), hints[f.name]) for f in fields(self)]
        values += [(k, v, MODEL_FIELD_TYPES[k]) for k, v in self.model.items() if k in MODEL_FIELD_TYPES]
        for name, value, hint in values:
            problem = value_problem(value, hint)
            if problem:
                raise UsageError(f"--{name.replace('_', '-')} {problem}")
        positive = ("batch_size", "grad_accum", "eval_every", "eval_batches", "log_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.lr <= 0:
            raise UsageError(f"--lr must be positive (got {self.lr})")
        if not 0 <= self.warmup < 1:
            raise UsageError(f"--warmup is a fraction of the run in [0, 1) (got {self.warmup})")
        if not 0 <= self.min_lr_ratio <= 1:
            raise UsageError(f"--min-lr-ratio is a fraction of --lr in [0, 1] (got {self.min_lr_ratio})")
        if self.optimizer not in OPTIMIZERS:
            raise UsageError(f"--optimizer must be {' or '.join(OPTIMIZERS)} (got {self.optimizer!r})")
        if self.muon_lr <= 0:
            raise UsageError(f"--muon-lr must be positive (got {self.muon_lr})")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise UsageError(f"--beta1 and --beta2 must be in [0, 1) (got {self.beta1}, {self.beta2})")
        for name in ("max_steps", "max_tokens"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1 (got {value})")
        if self.max_time is not None and self.max_time <= 0:
            raise UsageError(f"--max-time must be positive (got {self.max_time})")
        if self.max_steps is None and self.max_time is None and self.max_tokens is None:
            raise UsageError("give the run a budget: --max-steps N, --max-time DURATION (e.g. 2m) "
                             "and/or --max-tokens N (e.g. 50M)")
        if self.grad_clip < 0 or self.weight_decay < 0 or self.sample_tokens < 0:
            raise UsageError("--grad-clip, --weight-decay and --sample-tokens cannot be negative")
        if self.stage not in STAGES:
            raise UsageError(f"stage must be {' or '.join(STAGES)} (got {self.stage!r})")
        if self.lora_rank < 0 or self.lora_alpha <= 0 or not 0 <= self.lora_dropout < 1:
            raise UsageError(f"--lora-rank must be ≥ 0, --lora-alpha > 0 and --lora-dropout in [0, 1) (got "
                             f"{self.lora_rank}, {self.lora_alpha}, {self.lora_dropout})")
        if self.precision not in ("auto", "fp32", "bf16"):
            raise UsageError(f"--precision must be auto, fp32 or bf16 (got {self.precision!r}); "
                             "fp16 is not offered: it is slow on CPUs and needs loss scaling on GPUs")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


# Presets. quick: chosen by measurement on a 2-core CPU (benchmarks/quality_per_minute.py, docs/training.md
# "Quality per minute"): byte-level tokens keep the output layer tiny (257 ids vs 100k for cl100k, where the LM
# head is ~80% of a step). The shape is GPT-2's at 4 × 128, context 64. The optimizer is Muon for the blocks'
# matrices (AdamW at lr 3e-3 for embeddings and gains): it was the largest single gain measured, worth ~0.11
# nats/char at the same batch; its Newton–Schulz step costs about as much as the forward and backward at 768
# tokens per step, so a batch of 64 (4,096 tokens) amortises it — 24–96 were measured, 64 was best. With AdamW
# the opposite holds (batch 12 beats 24: more steps win), so `--optimizer adamw --batch-size 12` is the previous
# GPT-2-style recipe. Precision is auto: whichever of fp32 and bf16 trains this shape faster on the machine at
# hand (measured). Figures per machine: docs/benchmarks.md.
# medium / full: FineWeb-Edu (the `fineweb-edu` source) with cl100k_base on one GPU; the seeds' 16× gradient
# accumulation gives ~0.26M / ~0.5M-token optimizer steps. Sizes and expected times: docs/training.md.
PRESETS: dict[str, dict] = {
    "quick": dict(data="builtin", tokenizer="byte", size="mini",
                  model={"d_model": 128, "n_head": 4, "n_layer": 4, "context_length": 64},
                  optimizer="muon", batch_size=64, lr=3e-3, beta2=0.99, warmup=0.05, max_time=110.0,
                  eval_every=250, eval_batches=20),
    "medium": dict(data="fineweb-edu", tokenizer="cl100k_base", size="medium",
                   batch_size=32, grad_accum=16, lr=1e-3, warmup=0.05, max_tokens=1_000_000_000,
                   eval_every=250, eval_batches=40, save_every=250),
    "full": dict(data="fineweb-edu", tokenizer="cl100k_base", size="gpt2",
                 batch_size=16, grad_accum=32, lr=6e-4, warmup=0.05, max_tokens=3_300_000_000,
                 eval_every=500, eval_batches=40, save_every=500),
}

# `train sft` presets. quick: the offline demonstration — builtin-chat's questions about digits, fine-tuning a
# `train --preset quick` base (pass it with --init-from) on a laptop CPU in about two minutes; the measured
# accuracy before and after is in docs/finetuning.md (benchmarks/sft_demo.py).
SFT_PRESETS: dict[str, dict] = {
    "quick": dict(data="builtin-chat", batch_size=32, lr=1e-3, optimizer="adamw", warmup=0.05, max_time=120.0,
                  eval_every=100, eval_batches=8, sample_tokens=8, weight_decay=0.0),
}

# Variants of a preset for one tokenizer, applied on top of it when that tokenizer is in use. quick + char
# needs none: the measured quick values above are also the best char-level ones found
# (benchmarks/quality_per_minute.py).
PRESET_VARIANTS: dict[tuple[str, str], dict] = {}


def preset_config(preset: str | None, file_values: dict | None = None, **overrides) -> TrainConfig:
    """The TrainConfig of a preset (or the defaults), then a recipe file's values, then non-None overrides."""
    base: dict = {}
    file_values = dict(file_values or {})
    preset = overrides.pop("preset", None) or preset or file_values.pop("preset", None)
    file_values.pop("preset", None)
    if preset is not None:
        sft = (overrides.get("stage") or file_values.get("stage")) == "sft"
        table = SFT_PRESETS if sft else PRESETS
        if preset not in table:
            raise UsageError(f"unknown {'sft ' if sft else ''}preset {preset!r}; choose one of {', '.join(table)}")
        base = dict(table[preset])
        tokenizer = overrides.get("tokenizer") or file_values.get("tokenizer") or base.get("tokenizer")
        variant = dict(PRESET_VARIANTS.get((preset, tokenizer), {}))
        base["model"] = {**base.get("model", {}), **variant.pop("model", {})}
        base.update(variant)
    model = {**base.pop("model", {}), **file_values.pop("model", {}), **(overrides.pop("model", None) or {})}
    base.update(file_values)
    base.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig(model=model, **base)


def plan_new_run(preset: str | None, config_file: Path | None, settings: dict, model: dict,
                 budget: dict) -> tuple["TrainConfig", str | None]:
    """What `train` (without --resume) sets up: (TrainConfig, label for the run folder's name).

    Precedence, lowest first: preset < recipe file < flags (settings, model overrides and budgets, None = not
    given). Starting from other weights (--init-from) without --tokenizer keeps those weights' tokenizer."""
    settings = dict(settings)
    if settings.get("init_from") and not settings.get("tokenizer"):
        from .init_from import checkpoint_tokenizer_name

        settings["tokenizer"] = checkpoint_tokenizer_name(settings["init_from"])
    file_values = load_config_file(config_file) if config_file is not None else None
    config = preset_config(preset, file_values, model={k: v for k, v in model.items() if v is not None},
                           **settings, **budget)
    return config, preset or (file_values or {}).get("preset")


@functools.cache
def field_types() -> dict[str, object]:
    """TrainConfig field name -> its type (the annotations are strings under `from __future__ import
    annotations`; get_type_hints evaluates them)."""
    return typing.get_type_hints(TrainConfig)


def load_config_file(path: str | Path) -> dict:
    """A saved recipe (TOML or YAML) → dict of TrainConfig values (+ optional "preset").

    Keys are TrainConfig fields (dashes or underscores); model fields may sit at top level or in a [model]
    table. Budgets may be strings: max_time = "3m", max_tokens = "50M"."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UsageError(f"config file {path} does not exist; pass a .toml or .yaml recipe")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"config file {path} is not UTF-8 text (a binary file?); pass a .toml or .yaml "
                         "recipe") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path} ({exc.strerror or exc}); pass a readable .toml "
                         "or .yaml recipe") from None
    try:
        if path.suffix.lower() == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python < 3.11
                import tomli as tomllib
            raw = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml
            except ModuleNotFoundError:
                raise UsageError("YAML recipes need pyyaml (`pip install pyyaml`); or write the recipe "
                                 "as TOML") from None
            raw = yaml.safe_load(text) or {}
        else:
            raise UsageError(f"config file {path} must end in .toml, .yaml or .yml")
    except UsageError:
        raise
    except Exception as exc:  # tomllib.TOMLDecodeError / yaml.YAMLError
        raise UsageError(f"cannot parse {path}: {' '.join(str(exc).split())}; fix the syntax") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path} must hold a table of settings (key = value), not {type(raw).__name__}")
    known = {f.name for f in fields(TrainConfig)} | {"preset"}
    values: dict = {}
    model = raw.pop("model", None) or {}
    if not isinstance(model, dict):
        raise UsageError(f"{path}: model must be a table of model fields ([model] in TOML), got {model!r}")
    model = dict(model)
    for key, value in raw.items():
        name = key.replace("-", "_")
        if name == "model_size":
            name = "size"
        if name in MODEL_FIELD_TYPES:
            model[name] = value
        elif name in known:
            values[name] = value
        else:
            raise UsageError(f"{path}: unknown setting {key!r}; known: {', '.join(sorted(known))}, "
                             f"and model fields {', '.join(MODEL_FIELD_TYPES)}")
    for key, parse in (("max_time", parse_duration), ("max_tokens", parse_count)):
        try:
            if key in values:
                values[key] = parse(values[key])
        except UsageError as exc:
            raise UsageError(f"{path}: {key}: {exc}") from None
    if model:
        values["model"] = {k.replace("-", "_"): v for k, v in model.items()}
    _check_file_types(path, values)
    return values


def _check_file_types(path: Path, values: dict) -> None:
    """Name the file and the key of a value of the wrong type (`lr = "abc"`), or a non-finite number."""
    hints = {**field_types(), "preset": str}
    checks = [(k, v, hints[k], values) for k, v in values.items() if k != "model"]
    model = values.get("model", {})
    checks += [(k, v, MODEL_FIELD_TYPES[k], model) for k, v in model.items() if k in MODEL_FIELD_TYPES]
    for key, value, hint, holder in checks:
        holder[key] = value = coerce_number(value, hint)
        problem = value_problem(value, hint)
        if problem:
            raise UsageError(f"{path}: {key} {problem}; fix the value in the file")


_UNITS = {"": 1, "s": 1, "m": 60, "min": 60, "h": 3600}
_COUNTS = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}


def parse_duration(text: str | float | None) -> float | None:
    """'90' / '90s' / '3m' / '1.5h' → seconds."""
    if text is None or isinstance(text, (int, float)):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(s|m|min|h)?\s*", str(text))
    if not match:
        raise UsageError(f"cannot read duration {text!r}; use seconds or a unit, e.g. 90s, 3m, 1h")
    return float(match.group(1)) * _UNITS[match.group(2) or ""]


def parse_count(text: str | int | None) -> int | None:
    """'50000' / '50k' / '2.5M' / '1B' / '1e9' → an integer count."""
    if text is None or isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbgt]?)\s*", str(text).lower())
    if not match:
        raise UsageError(f"cannot read count {text!r}; use a number with an optional unit, e.g. 50M, 2.5B")
    return int(round(float(match.group(1)) * _COUNTS[match.group(2)]))
