"""Building what the loop trains: the dataset, the starting weights, and the wrapped model.

    resolve_data     the dataset (rank 0 prepares it while other ranks wait, then they open it)
    initial_weights  fresh init from a named size, `--init-from` weights, or a checkpoint to `--resume`
    choose_precision fp32 or bf16 (auto: measured on this machine by rank 0), and the kernels to train with
    wrap_model       the module the training forward pass goes through: torch.compile'd and/or DDP-wrapped
                     (checkpoints and evaluation use the plain model underneath)
"""

from __future__ import annotations

from .. import checkpoint as ckpt
from ..errors import UsageError
from . import distributed


def resolve_data(config, dist, progress):
    from ..data import resolve_dataset

    if dist.enabled and not dist.is_main:
        distributed.barrier()
    dataset = resolve_dataset(config.data, config.tokenizer, progress=progress)
    if dist.enabled and dist.is_main:
        distributed.barrier()
    return dataset


def initial_weights(config, tokenizer, device: str, resume_from=None):
    """(ModelConfig, weights or None, (tensors, json state) to resume or None)."""
    from ..model import model_config, pad_vocab
    from .init_from import load_initial_weights

    if resume_from is not None:
        loaded = ckpt.load_checkpoint(resume_from, device=device)
        return loaded.model.config, loaded.model.state_dict(), ckpt.load_trainer_state(resume_from)
    if config.init_from:
        model, state = load_initial_weights(config.init_from, tokenizer, config.model, device)
        return model, state, None
    try:
        return model_config(config.size, pad_vocab(tokenizer.vocab_size), **config.model), None, None
    except (KeyError, ValueError, TypeError) as exc:
        raise UsageError(f"invalid model settings: {exc.args[0] if exc.args else exc}") from None


def choose_precision(config, model_config, device: str, dist):
    """(precision, kernel table to train with or None). Under torchrun rank 0 decides alone (the others wait, so
    its timing is not disturbed) and every rank follows its choice. --manual-backward trains in fp32 (its
    hand-written backward passes run in the parameters' dtype) with its own kernels."""
    from .. import accel
    from .precision import resolve_precision

    if config.manual_backward:
        return "fp32", None
    if dist.enabled and not dist.is_main:
        distributed.barrier()
    precision = resolve_precision(config.precision, device, model_config, config.batch_size)
    table = None
    if accel.enabled():
        from ..accel.precision import training_kernels

        table = training_kernels(model_config, config.batch_size, precision, device)
    if dist.enabled and dist.is_main:
        distributed.barrier()
    if dist.enabled and config.precision == "auto":
        main_said_bf16 = distributed.reduce_max(float(dist.is_main and precision == "bf16"), dist, device)
        precision = "bf16" if main_said_bf16 > 0 else "fp32"
    return precision, table


def wrap_model(model, config, device: str, dist):
    """(module for the training forward pass, whether it was compiled)."""
    import torch

    use_compile = config.compile if config.compile is not None else device.startswith("cuda")
    wrapped = torch.compile(model) if use_compile else model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ids = [int(device.split(":")[1])] if device.startswith("cuda:") else None
        wrapped = DistributedDataParallel(wrapped, device_ids=ids)
    return wrapped, bool(use_compile)
