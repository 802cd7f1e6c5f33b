"""A LoRA model in a checkpoint folder: what gptscratch/checkpoint.py writes and reads for one.

A model fine-tuned with LoRA adapters (gptscratch/model/lora.py, `train --lora-rank R`) is saved as

    model.safetensors     the base weights, under their usual names (`blocks.0.attn.qkv.weight`): unchanged by
                          LoRA fine-tuning
    adapter.safetensors   the adapters only: `blocks.0.attn.qkv.lora_A` (r, in), `blocks.0.attn.qkv.lora_B`
                          (out, r), ... — r·(in + out) numbers per adapted layer
    config.json           a top-level "lora": {"rank", "alpha", "dropout", "targets"}: what rebuilds the layers

Why apart rather than folded in: the folder then says what training did (the base, and a small change to it),
several fine-tunes of one base differ only in a small file, and `--resume` continues the adapters themselves.
`load_checkpoint` rebuilds the wrapped layers (unmerged, as trained), so every command that loads a checkpoint
works on it; `gptscratch pretrained merge` writes an ordinary checkpoint with W + (α/r)·B A folded in, and
`gptscratch pretrained export` folds them the same way. A checkpoint without "lora" has no adapter file and
loads exactly as before.

Kept out of checkpoint.py so that module stays one concept; like it, this knows only model/ (imported inside the
functions: checkpoint.py is imported at CLI start-up, before torch).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import CheckpointError

ADAPTER_FILE = "adapter.safetensors"
CONFIG_KEY = "lora"


def adapter_config(model) -> dict:
    """The config.json keys a model adds: {"lora": {rank, alpha, dropout, targets}} for a LoRA model, else {}."""
    from .model.lora import lora_settings

    settings = lora_settings(model)
    return {} if settings is None else {CONFIG_KEY: settings}


def base_weights(model) -> dict:
    """The model's state dict without adapter tensors (all of it, for a model without adapters)."""
    from .model.lora import base_state_dict

    return base_state_dict(model)


def write_model_files(model, path: Path, tensors: dict, metadata: dict) -> None:
    """Write `tensors` (the base weights) to `path` (model.safetensors) and, for a LoRA model, its adapters to
    adapter.safetensors next to it, fsynced (the caller fsyncs `path` and writes config.json last)."""
    from safetensors.torch import save_file

    from .model.lora import has_lora, lora_state_dict

    save_file(tensors, str(path), metadata=metadata)
    if has_lora(model):
        adapters = Path(path).with_name(ADAPTER_FILE)
        save_file({k: v.detach().contiguous() for k, v in lora_state_dict(model).items()}, str(adapters),
                  metadata=metadata)
        with open(adapters, "rb+") as handle:
            os.fsync(handle.fileno())


def lora_entry(config: dict, folder) -> dict | None:
    """config.json's "lora" entry, checked (CheckpointError when malformed); None for a model without adapters."""
    lora = config.get(CONFIG_KEY)
    if lora is None:
        return None
    if not (isinstance(lora, dict) and type(lora.get("rank")) is int and lora["rank"] > 0
            and isinstance(lora.get("alpha"), (int, float)) and lora["alpha"] > 0
            and isinstance(lora.get("dropout", 0.0), (int, float)) and isinstance(lora.get("targets"), (list, str))):
        raise CheckpointError(f"{Path(folder) / 'config.json'} has an invalid \"lora\" entry ({lora!r}); the "
                              "checkpoint is damaged or was edited, use another one (e.g. the run's best/)")
    return lora


def read_adapters(folder, config: dict, device: str = "cpu", dtype=None) -> dict:
    """The adapter tensors of the checkpoint at `folder` whose parsed config.json is `config` ({} when it has no
    "lora" entry), cast to `dtype` when given; CheckpointError when the file is missing or damaged."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if lora_entry(config, folder) is None:
        return {}
    file = Path(folder) / ADAPTER_FILE
    if not file.is_file():
        raise CheckpointError(f"{folder} holds no {ADAPTER_FILE} but its config.json records LoRA adapters; the "
                              "checkpoint is incomplete, use another one (e.g. the run's best/)")
    try:
        tensors = load_file(str(file))
    except (SafetensorError, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"cannot read {file} ({reason}); the file is damaged, use another checkpoint "
                              "(e.g. the run's best/)") from None
    return {k: (v.to(dtype) if dtype is not None and v.is_floating_point() else v).to(device)
            for k, v in tensors.items()}


def with_lora_layers(model, config: dict, folder):
    """`model` with the adapters config.json records wrapped around its layers (fresh, to be loaded), or
    unchanged without a "lora" entry. Works on a `meta` model: shapes only."""
    from .model.lora import apply_lora

    lora = lora_entry(config, folder)
    if lora is not None:
        try:
            apply_lora(model, lora["rank"], lora["alpha"], lora.get("dropout", 0.0), lora["targets"])
        except ValueError as exc:
            raise CheckpointError(f"{Path(folder) / 'config.json'} has an invalid \"lora\" entry ({exc}); the "
                                  "checkpoint is damaged or was edited") from None
    return model
