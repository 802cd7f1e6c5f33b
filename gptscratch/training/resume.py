"""What `--resume RUN` may change, and the refusal of everything else.

A resumed run continues *exactly* (trainer.py): its data, tokenizer, model shape and optimizer settings are
the ones recorded in the checkpoint (trainer_state.json). A flag that would change them cannot apply, and
silently ignoring it (`--resume RUN --data other` training on the run's own data) is worse than refusing it.
So, on resume:
  - budgets (--max-steps, --max-time, --max-tokens), --debug and --compile apply: they change when the run
    stops or how fast it goes, not what it computes;
  - any other setting given with the run's recorded value is accepted (re-running the original command line
    with --resume added works: a --preset / --config is expanded and compared like the flags);
  - any other setting with a different value is a UsageError naming the recorded value and the two fixes:
    drop the flag, or start a new run from the run's weights with --init-from.
"""

from __future__ import annotations

from pathlib import Path

from .. import checkpoint as ckpt
from ..errors import UsageError
from .config import TrainConfig

# Applied on resume by the caller; everything else must match the recorded run.
RESUMABLE = ("max_steps", "max_time", "max_tokens", "debug", "compile")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _same_path(a: str, b: str) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except (OSError, RuntimeError):
        return False


def _same_data(given: str, config: TrainConfig, dataset_name: str | None) -> bool:
    return given in (config.data, dataset_name) or _same_path(given, config.data)


def _same_tokenizer(given: str, config: TrainConfig, recorded_name: str | None) -> bool:
    from ..tokenizers import ALIASES

    def canonical(name):
        return None if name is None else ALIASES.get(name.strip().lower(), name.strip().lower())

    return canonical(given) in (canonical(config.tokenizer), canonical(recorded_name)) or (
        config.tokenizer is not None and _same_path(given, config.tokenizer))


def check_resume_flags(checkpoint_dir: Path, config: TrainConfig, settings: dict, model: dict,
                       out: Path | None = None, preset: str | None = None, config_file: Path | None = None) -> None:
    """Raise UsageError if a flag given with --resume would change the run recorded at `checkpoint_dir`.

    settings: TrainConfig values given on the command line (None = not given); model: ModelConfig overrides
    given (None = not given); out / preset / config_file: those flags as given."""
    run = Path(checkpoint_dir).parent
    fix = f"drop the flag, or start a new run from this run's weights with --init-from {run}"
    given = {name for name, value in [*settings.items(), *model.items()] if value is not None}
    source = None

    def _origin(name: str) -> str:  # say where a value the user did not type came from
        return "" if name in given or source is None else f" (from {source})"

    if preset is not None or config_file is not None:
        # The original command line again: compare what the preset / recipe + flags would set up with the run.
        from .config import load_config_file, preset_config

        source = " ".join(filter(None, [preset and f"--preset {preset}", config_file and f"--config {config_file}"]))
        wanted = preset_config(preset, load_config_file(config_file) if config_file else None,
                               model={k: v for k, v in model.items() if v is not None}, **settings)
        settings = {name: getattr(wanted, name) for name in settings}
        model = {**dict.fromkeys(model), **wanted.model}
    if out is not None and not _same_path(str(out), str(run)):
        raise UsageError(f"--resume continues the run in its own folder {run}; drop --out {out} (or copy the "
                         "run folder there first and resume that copy)")
    saved = ckpt.read_config(checkpoint_dir)
    _, state = ckpt.load_trainer_state(checkpoint_dir, tensors=False)
    data = settings.get("data")
    if data is not None and not _same_data(data, config, state.get("data")):
        raise UsageError(f"--data {data}{_origin('data')} differs from the run's data {config.data!r}: a resumed "
                         f"run continues on its own data; {fix}")
    tokenizer = settings.get("tokenizer")
    recorded_tokenizer = saved.get("tokenizer", {}).get("name")
    if tokenizer is not None and not _same_tokenizer(tokenizer, config, recorded_tokenizer):
        raise UsageError(f"--tokenizer {tokenizer}{_origin('tokenizer')} differs from the run's tokenizer "
                         f"{config.tokenizer or recorded_tokenizer!r}: a resumed run keeps its vocabulary; {fix}")
    for name, value in settings.items():
        if name in ("data", "tokenizer") or name in RESUMABLE or value is None:
            continue
        recorded = getattr(config, name)
        if value != recorded:
            raise UsageError(f"{_flag(name)} {value}{_origin(name)} differs from the run's recorded {recorded!r}: a "
                             "resumed run continues exactly as it was set up (only --max-steps, --max-time, "
                             f"--max-tokens, --debug and --compile may change); {fix}")
    shape = saved.get("model", {})
    for name, value in model.items():
        if value is None:
            continue
        recorded = shape.get(name)
        if name == "d_ff" and recorded is None:
            recorded = 4 * shape.get("d_model", 0)  # ModelConfig's default
        if value != recorded:
            raise UsageError(f"{_flag(name)} {value}{_origin(name)} differs from the run's model ({name} = "
                             f"{recorded!r}): a resumed run keeps its shape; {fix}")


def resume_config(run: str | None) -> tuple[Path, TrainConfig]:
    """The checkpoint folder and saved TrainConfig of a run to resume (None: the most recently trained run)."""
    path = ckpt.resolve_checkpoint(run)
    _, state = ckpt.load_trainer_state(path, tensors=False)
    return path, TrainConfig.from_dict(state["train_config"])


def plan_resume(run: str | None, settings: dict, model: dict, budget: dict, *, out: Path | None = None,
                preset: str | None = None, config_file: Path | None = None) -> tuple[Path, TrainConfig]:
    """What `train --resume [RUN]` continues: (checkpoint folder, the run's TrainConfig with the new budgets,
    --debug and --compile applied). Raises UsageError for any other flag that would change the run.

    settings / model / budget: the TrainConfig values, ModelConfig overrides and budgets given on the command
    line (None = not given); run None: the most recently trained run."""
    checkpoint_dir, config = resume_config(run)
    check_resume_flags(checkpoint_dir, config, settings, model, out=out, preset=preset, config_file=config_file)
    applied = {name: value for name, value in budget.items() if value is not None}
    if settings.get("debug"):
        applied["debug"] = True
    if settings.get("compile") is not None:
        applied["compile"] = settings["compile"]
    return checkpoint_dir, config.replace(**applied)
