"""Checkpoints and run folders: safetensors + JSON, written so a crash never leaves a broken one behind.

A *checkpoint* is a folder:

    model.safetensors          the weights (tied tensors stored once; re-tied on load)
    config.json                model config, tokenizer spec, training metadata, gptscratch version
    trainer_state.safetensors  optional: optimizer moments, RNG and data-sampler states (tensors)
    trainer_state.json         optional: step, tokens seen, schedule, best val loss, the train config

A *run folder* (what `gptscratch train` creates) holds `latest/` and `best/` checkpoints plus `metrics.jsonl`.
Nothing is ever unpickled: safetensors holds raw tensors and JSON holds everything else.

Crash safety: a checkpoint is written into a hidden temporary folder first, every file fsynced, and only then
swapped in with two renames (`latest` → `latest.old`, temporary → `latest`). A kill at any moment leaves either
the new or the old complete checkpoint; `resolve_checkpoint` and the next save recover from `latest.old`.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import CheckpointError, UsageError
from .paths import runs_root

FORMAT = "gptscratch-checkpoint"
FORMAT_VERSION = 1
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
STATE_TENSORS_FILE = "trainer_state.safetensors"
STATE_JSON_FILE = "trainer_state.json"
OLD_SUFFIX = ".old"


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode), its tokenizer, and the parsed config.json."""

    model: object
    tokenizer: object
    config: dict
    path: Path

    @property
    def training(self) -> dict:
        return self.config.get("training", {})


def model_tensors(model) -> dict:
    """The model's state dict with tied duplicates removed (safetensors refuses shared storage)."""
    state = model.state_dict()
    if model.config.tie_weights:
        state.pop("lm_head.weight", None)
    return {name: tensor.detach().contiguous() for name, tensor in state.items()}


def _fsync_dir(path: Path) -> None:
    if os.name != "nt":  # directories cannot be opened for fsync on Windows
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_file(path: Path, write) -> None:
    write(path)
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def recover(final: Path) -> None:
    """Finish or undo a swap that a crash interrupted, and remove stale temporary folders."""
    old = final.with_name(final.name + OLD_SUFFIX)
    if old.exists():
        if final.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.rename(final)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)


def save_checkpoint(directory, model, tokenizer_spec: dict, training: dict | None = None,
                    state_tensors: dict | None = None, state: dict | None = None) -> Path:
    """Write a complete checkpoint folder at `directory`, replacing any previous one atomically."""
    from safetensors.torch import save_file

    final = Path(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    try:
        config = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "gptscratch_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": model.config.to_dict(), "tokenizer": tokenizer_spec, "training": training or {},
        }
        _write_file(tmp / MODEL_FILE, lambda p: save_file(model_tensors(model), str(p),
                                                          metadata={"format": FORMAT}))
        if state_tensors is not None:
            _write_file(tmp / STATE_TENSORS_FILE, lambda p: save_file(
                {k: v.detach().contiguous().cpu() for k, v in state_tensors.items()}, str(p)))
        if state is not None:
            _write_file(tmp / STATE_JSON_FILE, lambda p: p.write_text(json.dumps(state, indent=2)))
        # config.json last: a folder with a config.json was written completely.
        _write_file(tmp / CONFIG_FILE, lambda p: p.write_text(json.dumps(config, indent=2)))
        _fsync_dir(tmp)
        old = final.with_name(final.name + OLD_SUFFIX)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        _fsync_dir(final.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _is_checkpoint(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / MODEL_FILE).is_file()


def _checkpoint_in(folder: Path) -> Path | None:
    """A checkpoint folder itself, or the newest complete checkpoint inside a run folder."""
    if _is_checkpoint(folder):
        return folder
    for name in ("latest", "latest" + OLD_SUFFIX, "best", "best" + OLD_SUFFIX):
        if _is_checkpoint(folder / name):
            return folder / name
    return None


def list_runs() -> list[Path]:
    """Run folders under the runs directory, most recently updated first."""
    root = runs_root()
    if not root.is_dir():
        return []
    runs = [p for p in root.iterdir() if p.is_dir() and _checkpoint_in(p) is not None]
    return sorted(runs, key=lambda p: (_checkpoint_in(p) / CONFIG_FILE).stat().st_mtime, reverse=True)


def resolve_checkpoint(name_or_path: str | os.PathLike | None = None) -> Path:
    """Find a checkpoint folder from a path, a run name, or (None) the most recently trained run."""
    if name_or_path is None:
        runs = list_runs()
        if not runs:
            raise UsageError(f"no trained model found in {runs_root()}; train one with "
                             "`gptscratch train --preset quick` or pass --checkpoint PATH")
        return _checkpoint_in(runs[0])
    candidates = [Path(name_or_path).expanduser(), runs_root() / str(name_or_path)]
    for candidate in candidates:
        if candidate.is_dir():
            found = _checkpoint_in(candidate)
            if found is not None:
                return found
            raise UsageError(f"{candidate} holds no complete checkpoint (model.safetensors + config.json); "
                             "pass a run folder or a checkpoint folder")
    raise UsageError(f"no checkpoint or run named {str(name_or_path)!r}; see `gptscratch train runs` "
                     f"or pass a folder path")


def read_config(checkpoint_dir: Path) -> dict:
    try:
        config = json.loads((Path(checkpoint_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {checkpoint_dir / CONFIG_FILE}: {exc}; the checkpoint is "
                              "damaged, use another one (e.g. the run's best/)") from None
    if config.get("format") != FORMAT or "model" not in config or "tokenizer" not in config:
        raise CheckpointError(f"{checkpoint_dir} is not a gptscratch checkpoint (config.json lacks "
                              "format/model/tokenizer); convert foreign weights with `gptscratch pretrained`")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{checkpoint_dir} was written by a newer gptscratch "
                              f"({config.get('gptscratch_version')}); upgrade with `pipx upgrade gptscratch`")
    return config


def load_checkpoint(name_or_path=None, device: str = "cpu", dtype=None) -> Checkpoint:
    """Load a checkpoint onto `device` (optionally casting floating weights to `dtype`), in eval mode."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .model import GPT, ModelConfig
    from .tokenizer import from_spec

    path = resolve_checkpoint(name_or_path)
    config = read_config(path)
    try:
        model_config = ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path / CONFIG_FILE} has an invalid model config ({exc})") from None
    try:
        tensors = load_file(str(path / MODEL_FILE), device=str(device))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"cannot read {path / MODEL_FILE} ({exc}); the file is damaged, "
                              "use another checkpoint (e.g. the run's best/)") from None
    if model_config.tie_weights and "tok_embed.weight" in tensors:
        tensors["lm_head.weight"] = tensors["tok_embed.weight"]
    with torch.device(device):
        model = GPT(model_config)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path / MODEL_FILE} does not match its config.json ({first}); "
                              "the checkpoint is damaged or was edited") from None
    if dtype is not None:
        model.to(dtype=dtype)
    tokenizer = from_spec(config["tokenizer"])
    if tokenizer.vocab_size > model_config.vocab_size:
        raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} ids but the model only "
                              f"{model_config.vocab_size}; the checkpoint's tokenizer spec is wrong")
    return Checkpoint(model=model.eval(), tokenizer=tokenizer, config=config, path=path)


def load_trainer_state(checkpoint_dir) -> tuple[dict, dict]:
    """(tensors, json state) saved for resuming; CheckpointError if the checkpoint has none."""
    from safetensors.torch import load_file

    checkpoint_dir = Path(checkpoint_dir)
    tensors_file, json_file = checkpoint_dir / STATE_TENSORS_FILE, checkpoint_dir / STATE_JSON_FILE
    if not (tensors_file.is_file() and json_file.is_file()):
        raise CheckpointError(f"{checkpoint_dir} has no trainer state to resume from (it holds weights only); "
                              "start a new run instead")
    return load_file(str(tensors_file)), json.loads(json_file.read_text(encoding="utf-8"))
