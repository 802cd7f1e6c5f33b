"""Checkpoints and run folders: safetensors + JSON, written so a crash never leaves a broken one behind.

A *checkpoint* is a folder:

    model.safetensors          the weights (tied tensors stored once; re-tied on load)
    config.json                model config, tokenizer spec, training metadata, gptscratch version
    trainer_state.safetensors  optional: optimizer moments, RNG and data-sampler states (tensors)
    trainer_state.json         optional: step, tokens seen, schedule, best val loss, the train config
    adapter.safetensors        a LoRA model's adapters (its base: model.safetensors; checkpoint_adapters.py)

    tokenizer/                 only for tokenizers made of files (a pretrained model's tokenizer.json, or
                               vocab.json + merges.txt), copied in so the folder is self-contained

A *run folder* (what `gptscratch train` creates) holds `latest/` and `best/` checkpoints plus `metrics.jsonl`.
A converted pretrained model lives in `pretrained_root()/<name>/`; its name (`gpt2`) works wherever a checkpoint
is accepted. Nothing is ever unpickled: safetensors holds raw tensors and JSON holds everything else.

Loading builds the model on the `meta` device (no memory, no random init; a small one for real: skeleton.py), then
adopts the file's tensors cast one by one (`load_state_dict(assign=True)`; no buffers): peak memory ≈ one copy.

This module knows only model/ and tokenizers/. A name it cannot find raises CheckpointNotFoundError; the
pretrained layer, which knows which names can be downloaded, adds how to get it.

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
from .checkpoint_adapters import (ADAPTER_FILE, adapter_config, base_weights, read_adapters, with_lora_layers,
                                  write_model_files)
from .errors import CheckpointError, CheckpointNotFoundError, UsageError
from .paths import pretrained_root, runs_root
from .skeleton import skeleton_device
from .tokenizers.files import bundle_files, is_file_spec, spec_folder

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
    state = base_weights(model)  # a LoRA model's adapters: adapter.safetensors (checkpoint_adapters.py)
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


def _remove(folder: Path) -> None:
    """Delete a checkpoint folder config.json first, so a kill halfway never leaves one that looks complete."""
    (folder / CONFIG_FILE).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def _is_leftover(folder: Path) -> bool:
    """A folder this module moved aside (`<name>.old`): it holds checkpoint files only (maybe half deleted)."""
    names = {MODEL_FILE, CONFIG_FILE, STATE_TENSORS_FILE, STATE_JSON_FILE, ADAPTER_FILE, "tokenizer"}
    return folder.is_dir() and not folder.is_symlink() and all(p.name in names for p in folder.iterdir())


def damaged_file_error(file: Path, error: Exception, fix: str = "use another checkpoint (e.g. the run's best/)"
                       ) -> CheckpointError:
    """The one-line error for a checkpoint file that exists but cannot be decoded (truncated, garbage)."""
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return CheckpointError(f"cannot read {file} ({reason}); the file is damaged, {fix}")


def check_checkpoint_target(directory) -> Path:
    """Refuse (UsageError) to write a checkpoint over anything but a checkpoint folder or an empty folder.

    Saving replaces the target folder wholesale, so pointing `--out` at a run folder, a dataset or a
    file would silently delete it. Callers that take the path from the user may call this before any
    long work; save_checkpoint/write_checkpoint call it again before writing anything."""
    final = Path(directory).expanduser()
    old = final.with_name(final.name + OLD_SUFFIX)
    if not final.exists() and _is_checkpoint(old):
        return final  # a swap interrupted by a crash: recover() puts the checkpoint back, then it is replaced
    if old.exists() and not _is_leftover(old):
        raise UsageError(f"{old} is in the way (saving {final} moves the previous checkpoint there); "
                         "rename or delete it")
    if final.exists() and not final.is_dir():
        raise UsageError(f"{final} already exists and is not a checkpoint folder (it is a file); "
                         "choose a new path or delete it")
    if final.is_dir() and not _is_checkpoint(final) and any(final.iterdir()):
        what = "it holds a training run" if _checkpoint_in(final) is not None else "it holds other files"
        raise UsageError(f"{final} already exists and is not a checkpoint folder ({what}); "
                         "choose a new path or delete it")
    return final


def recover(final: Path) -> None:
    """Finish or undo a swap that a crash interrupted, and remove stale temporary folders."""
    old = final.with_name(final.name + OLD_SUFFIX)
    if _is_leftover(old):  # only ever a folder this module moved aside, never a user's own `<name>.old`
        if final.exists():
            _remove(old)
        elif _is_checkpoint(old):
            old.rename(final)
    for stale in final.parent.glob(f".{final.name}.tmp-*"):
        _remove(stale)


def save_checkpoint(directory, model, tokenizer_spec: dict, training: dict | None = None,
                    state_tensors: dict | None = None, state: dict | None = None) -> Path:
    """Write a complete checkpoint folder at `directory`, replacing a previous checkpoint there atomically.

    UsageError, before anything is written, when `directory` exists and is neither a checkpoint folder nor
    empty (a run folder, a file, ...): that is never silently deleted."""
    return write_checkpoint(directory, model.config.to_dict(), tokenizer_spec,
                            lambda p: write_model_files(model, p, model_tensors(model), {"format": FORMAT}),
                            training, state_tensors, state, extra=adapter_config(model))


def write_checkpoint(directory, model_config: dict, tokenizer_spec: dict, write_weights, training: dict | None = None,
                     state_tensors: dict | None = None, state: dict | None = None, extra: dict | None = None) -> Path:
    """The atomic folder swap behind save_checkpoint; `write_weights(path)` writes model.safetensors (converters
    stream it tensor by tensor). `extra` adds top-level keys to config.json (e.g. where weights came from)."""
    from safetensors.torch import save_file

    final = check_checkpoint_target(directory)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover(final)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    tmp.mkdir()
    try:
        if is_file_spec(tokenizer_spec):  # tokenizer made of files: copy them in
            tokenizer_spec = bundle_files(tokenizer_spec, tmp, source_base=final)
        config = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "gptscratch_version": __version__,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": model_config, "tokenizer": tokenizer_spec, "training": training or {}, **(extra or {}),
        }
        _write_file(tmp / MODEL_FILE, write_weights)
        if state_tensors is not None:
            _write_file(tmp / STATE_TENSORS_FILE, lambda p: save_file(
                {k: v.detach().contiguous().cpu() for k, v in state_tensors.items()}, str(p)))
        if state is not None:
            _write_file(tmp / STATE_JSON_FILE, lambda p: p.write_text(json.dumps(state, indent=2)))
        # config.json last: a folder with a config.json was written completely.
        _write_file(tmp / CONFIG_FILE, lambda p: p.write_text(json.dumps(config, indent=2)))
        _fsync_dir(tmp)
        old = final.with_name(final.name + OLD_SUFFIX)
        replacing = final.exists()  # a checkpoint or an empty folder (check_checkpoint_target)
        if replacing:
            final.rename(old)
        tmp.rename(final)
        _fsync_dir(final.parent)
        if replacing:  # never touch a foreign `<name>.old` this save did not create
            _remove(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _is_checkpoint(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / MODEL_FILE).is_file()


# The checkpoint folders a run holds, newest first (NAME.old exists only during a swap, or after a kill in one).
RUN_CHECKPOINTS = ("latest", "latest" + OLD_SUFFIX, "best", "best" + OLD_SUFFIX)


def _checkpoint_in(folder: Path) -> Path | None:
    """A checkpoint folder itself, or the newest complete checkpoint inside a run folder."""
    if _is_checkpoint(folder):
        return folder
    for name in RUN_CHECKPOINTS:
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
    name = str(name_or_path)
    candidates = [Path(name_or_path).expanduser(), runs_root() / name, pretrained_root() / name]
    for candidate in candidates:
        if candidate.is_dir():
            found = _checkpoint_in(candidate)
            if found is not None:
                return found
            raise UsageError(f"{candidate} holds no complete checkpoint (model.safetensors + config.json); "
                             "pass a run folder or a checkpoint folder")
    raise CheckpointNotFoundError(f"no checkpoint or run named {name!r}; see `gptscratch train runs` or pass a "
                                  "folder path", name=name)


def tokenizer_reference(name_or_path) -> str:
    """What to pass to get_tokenizer / --tokenizer for a checkpoint's tokenizer: its name, or, for a tokenizer
    made of files (hf-bpe, e.g. `gpt2`; hf-json), the absolute path of the folder holding them."""
    path = resolve_checkpoint(name_or_path)
    spec = read_config(path)["tokenizer"]
    return str(spec_folder(spec, path)) if is_file_spec(spec) else spec["name"]


def read_config(checkpoint_dir: Path) -> dict:
    try:
        config = json.loads((Path(checkpoint_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise damaged_file_error(Path(checkpoint_dir) / CONFIG_FILE, exc) from None
    if not isinstance(config, dict):
        raise damaged_file_error(Path(checkpoint_dir) / CONFIG_FILE,
                                 ValueError(f"holds a JSON {type(config).__name__}, not an object")) from None
    if config.get("format") != FORMAT or "model" not in config or "tokenizer" not in config:
        raise CheckpointError(f"{checkpoint_dir} is not a gptscratch checkpoint (config.json lacks "
                              "format/model/tokenizer); convert foreign weights with `gptscratch pretrained`")
    if config.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{checkpoint_dir} was written by a newer gptscratch "
                              f"({config.get('gptscratch_version')}); upgrade with `pipx upgrade gptscratch`")
    return config


def read_model_config(checkpoint_dir: Path, config: dict | None = None):
    """The checkpoint's ModelConfig (from `config`, its parsed config.json, when the caller has read it)."""
    from .model.config import ModelConfig

    config = config if config is not None else read_config(checkpoint_dir)
    try:
        return ModelConfig.from_dict(config["model"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{Path(checkpoint_dir) / CONFIG_FILE} has an invalid model config ({exc}); the "
                              "checkpoint is damaged or was edited, use another one (e.g. the run's best/)") from None


def load_checkpoint(name_or_path=None, device: str = "cpu", dtype=None) -> Checkpoint:
    """Load a checkpoint onto `device` (optionally casting floating weights to `dtype`), in eval mode."""
    from safetensors import SafetensorError, safe_open

    from .model import GPT
    from .tokenizers import from_spec

    path = resolve_checkpoint(name_or_path)
    config = read_config(path)
    model_config = read_model_config(path, config)
    tensors = {}
    try:
        with safe_open(str(path / MODEL_FILE), framework="pt") as weights:
            for key in weights.keys():  # one tensor at a time: cast, move, keep (the file is memory-mapped)
                tensor = weights.get_tensor(key)
                if dtype is not None and tensor.is_floating_point():
                    tensor = tensor.to(dtype)
                tensors[key] = tensor.to(device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise damaged_file_error(path / MODEL_FILE, exc) from None
    tensors.update(read_adapters(path, config, device, dtype))  # a LoRA model's (checkpoint_adapters.py)
    if model_config.tie_weights and "tok_embed.weight" in tensors:
        tensors["lm_head.weight"] = tensors["tok_embed.weight"]
    with skeleton_device(model_config):  # the weights come from the file
        model = with_lora_layers(GPT(model_config), config, path)
    try:
        model.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise CheckpointError(f"{path / MODEL_FILE} does not match its config.json ({first}); "
                              "the checkpoint is damaged or was edited") from None
    if model_config.tie_weights:  # assign=True made two Parameters of one tensor: make them one again
        model.lm_head.weight = model.tok_embed.weight
    try:
        tokenizer = from_spec(config["tokenizer"], base_dir=path)
    except UsageError as exc:  # e.g. an unknown tokenizer name: the file is wrong, not the user's flags
        raise CheckpointError(f"{path / CONFIG_FILE} names a tokenizer gptscratch cannot build ({exc})") from None
    if tokenizer.vocab_size > model_config.vocab_size:
        raise CheckpointError(f"tokenizer has {tokenizer.vocab_size} ids but the model only "
                              f"{model_config.vocab_size}; the checkpoint's tokenizer spec is wrong")
    return Checkpoint(model=model.eval(), tokenizer=tokenizer, config=config, path=path)


def load_trainer_state(checkpoint_dir, tensors: bool = True) -> tuple[dict, dict]:
    """(tensors, json state) saved for resuming; CheckpointError if the checkpoint has none or it is damaged.
    tensors=False reads only the JSON (the optimizer moments can be GBs) and returns {} for the tensors."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    checkpoint_dir = Path(checkpoint_dir)
    tensors_file, json_file = checkpoint_dir / STATE_TENSORS_FILE, checkpoint_dir / STATE_JSON_FILE
    if not (tensors_file.is_file() and json_file.is_file()):
        raise CheckpointError(f"{checkpoint_dir} has no trainer state to resume from (it holds weights only); "
                              "start a new run instead")
    fix = "resume from the run's best/ or start a new run with --init-from"
    try:
        loaded = load_file(str(tensors_file)) if tensors else {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise damaged_file_error(tensors_file, exc, fix) from None
    try:
        state = json.loads(json_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise damaged_file_error(json_file, exc, fix) from None
    if not isinstance(state, dict):
        raise damaged_file_error(json_file, ValueError(f"holds a JSON {type(state).__name__}, not an object"), fix)
    return loaded, state
