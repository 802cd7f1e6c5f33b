"""Building what the loop trains: the dataset, the starting weights, and the wrapped model.

    resolve_data     the dataset (rank 0 prepares it while other ranks wait, then they open it); for
                     `train sft` the conversations, rendered through the chat template (sft.py)
    training_sampler / validation_batches
                     where (x, y) batches come from: windows of a token stream, or padded conversations
    initial_weights  fresh init from a named size, `--init-from` weights, or a checkpoint to `--resume`
    choose_precision fp32 or bf16 (auto: measured on this machine by rank 0), and the kernels to train with
    wrap_model       the module the training forward pass goes through: torch.compile'd and/or DDP-wrapped
                     (checkpoints and evaluation use the plain model underneath), or with --fsdp the model
                     sharded in place (fsdp.py)
"""

from __future__ import annotations

from .. import checkpoint as ckpt
from ..errors import UsageError
from . import distributed


def resolve_data(config, dist, progress, resume_from=None):
    if config.fsdp:  # the first thing a run does: refuse an --fsdp run that cannot work before preparing data
        from .fsdp import check_supported

        check_supported(config, dist)

    if dist.enabled and not dist.is_main:
        distributed.barrier()
    if config.stage == "sft":
        from .sft import resolve_conversations

        dataset = resolve_conversations(config, progress, resume_from)
    else:
        dataset = _resolve_for(config, progress, resume_from)
    if dist.enabled and dist.is_main:
        distributed.barrier()
    return dataset


def _resolve_for(config, progress, resume_from):
    """The run's dataset. A resumed run whose trained tokenizer was trained again since keeps the tokens it was
    trained on: the prepared dataset is refused to new runs (data.prepare.StaleTokenizerError), not to it."""
    from ..data import open_dataset, resolve_dataset
    from ..data.prepare import StaleTokenizerError

    try:
        return resolve_dataset(config.data, config.tokenizer, progress=progress)
    except StaleTokenizerError as error:
        if resume_from is None:
            raise
        from .. import checkpoint as ckpt
        from ..tokenizers.files import spec_identity

        dataset = open_dataset(str(error.folder))
        if spec_identity(dataset.manifest["tokenizer"]) != spec_identity(ckpt.read_config(resume_from)["tokenizer"]):
            raise
        return dataset


def training_sampler(config, dataset, context_length: int, dist):
    """The training batches: random windows of the token stream, or (sft) shuffled padded conversations."""
    if config.stage == "sft":
        from .sft import ConversationSampler

        return ConversationSampler(dataset, "train", config.batch_size, context_length, seed=config.seed,
                                   rank=dist.rank, world_size=dist.world_size)
    from ..data import WindowSampler

    return WindowSampler(dataset, "train", config.batch_size, context_length, seed=config.seed, rank=dist.rank,
                         world_size=dist.world_size)


def validation_batches(config, dataset, context_length: int):
    """The same validation batches at every evaluation (all of them; the trainer shares them out by rank)."""
    if config.stage == "sft":
        from .sft import conversation_eval_batches

        return conversation_eval_batches(dataset, "val", config.batch_size, context_length, config.eval_batches)
    from ..data import eval_batches

    return eval_batches(dataset, "val", config.batch_size, context_length, config.eval_batches)


def initial_weights(config, tokenizer, device: str, resume_from=None):
    """(ModelConfig, weights or None, (tensors, json state) to resume or None)."""
    from ..model import model_config, pad_vocab
    from ..model.lora import base_state_dict
    from .init_from import load_initial_weights
    from .lora import merged_adapters

    if resume_from is not None:
        # Without a LoRA run's adapters: attach_adapters (lora.py) rebuilds and loads them after these weights.
        loaded = ckpt.load_checkpoint(resume_from, device=device)
        return loaded.model.config, base_state_dict(loaded.model), ckpt.load_trainer_state(resume_from)
    if config.init_from and config.stage == "sft":
        from .sft import initial_chat_weights

        model, state = initial_chat_weights(config, tokenizer, device)
        return model, merged_adapters(config.init_from, state), None
    if config.init_from:
        model, state = load_initial_weights(config.init_from, tokenizer, config.model, device)
        return model, merged_adapters(config.init_from, state), None
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


def wrap_model(model, config, device: str, dist, optimizer=None):
    """(module for the training forward pass, whether it was compiled).

    With --fsdp (fsdp.py) the model itself is sharded in place — `model` then *is* the FSDP module, which
    evaluation and sampling must call on every rank — and `optimizer` is re-pointed at the shards."""
    import torch

    use_compile = config.compile if config.compile is not None else device.startswith("cuda")
    if config.fsdp:
        from . import fsdp

        fsdp.check_supported(config, dist)
        if not fsdp.is_sharded(model):  # a resumed run was sharded already, as its optimizer state was loaded
            fsdp.shard_model(model, optimizer, device, dist.world_size)
        # compiled after sharding: FSDP's gather / reduce-scatter hooks stay outside the compiled graphs
        return (torch.compile(model) if use_compile else model), bool(use_compile)
    wrapped = torch.compile(model) if use_compile else model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ids = [int(device.split(":")[1])] if device.startswith("cuda:") else None
        wrapped = DistributedDataParallel(wrapped, device_ids=ids)
    return wrapped, bool(use_compile)
