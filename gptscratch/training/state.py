"""What a checkpoint must hold, beyond the weights, for `--resume` to continue exactly.

    tensors (trainer_state.safetensors)              JSON (trainer_state.json)
      optimizer.<i>.exp_avg / exp_avg_sq / step        step, tokens, elapsed, best val loss, the TrainConfig,
        (AdamW's moments; .momentum_buffer: Muon's)    the param-group settings, the sampler's plain fields
      rng.torch            (rank 0's CPU generator)
      rng.torch.rank<r>    (other ranks, under DDP)
      rng.cuda             (when training on CUDA)
      sampler.generator_state                          (the data order)

RNG states matter because dropout draws from the global generator: without them a resumed run would drop
different units than the uninterrupted one. Under torchrun every rank has its own generator; they are
gathered to rank 0 so the checkpoint restores each rank's.

Under --fsdp (fsdp.py) each rank holds only slices of the optimizer state: capture_state gathers it whole to
rank 0 and numbers it as one process would, so the checkpoint is the same ordinary one; restore_state scatters
it back — every rank reads the whole file on the CPU and keeps its own slices on its device.
"""

from __future__ import annotations

from .. import checkpoint as ckpt
from ..errors import TrainingError
from . import distributed


def write_checkpoint(trainer, directory, val_loss: float | None, collective: bool = True):
    """Capture the trainer's state and, on rank 0, write it with the weights as the checkpoint folder `directory`;
    returns its path (None on other ranks). With `collective` every rank must call it: RNG states are gathered,
    and under FSDP the weights and optimizer state are gathered whole from the shards — rank 0 writes the same
    ordinary checkpoint a single process would."""
    tensors, state = capture_state(trainer, collective)
    model = trainer.model
    if _sharded(trainer):
        from .fsdp import full_model

        model = full_model(trainer.model)  # a plain GPT on rank 0's CPU, None elsewhere
    if not trainer.dist.is_main:
        return None
    training = {k: state[k] for k in ("step", "tokens", "val_loss", "best_val_loss", "elapsed", "data", "precision")}
    state["val_loss"] = training["val_loss"] = val_loss
    try:
        return ckpt.save_checkpoint(directory, model, trainer.tokenizer.spec(), training=training,
                                    state_tensors=tensors, state=state)
    except OSError as exc:
        raise TrainingError(f"could not write checkpoint {directory} ({exc.strerror or exc}); the previous "
                            "checkpoint is intact — free disk space, then `gptscratch train --resume "
                            f"{trainer.run_dir}`") from None


def capture_state(trainer, collective: bool = True) -> tuple[dict, dict]:
    """(tensors, json state) of a trainer. With `collective`, every rank must call it (RNG gather)."""
    import torch

    from .optimizer import optimizer_state_tensors

    rng = torch.get_rng_state()
    states = distributed.gather_objects(rng, trainer.dist) if collective else [rng]
    if _sharded(trainer):  # collective: every rank takes part in the gather; rank 0 receives it
        from .fsdp import full_optimizer_state

        tensors, param_groups = full_optimizer_state(trainer.model, trainer.optimizer)
    else:
        tensors, param_groups = optimizer_state_tensors(trainer.optimizer)
    tensors["rng.torch"] = states[0]
    for rank, rank_state in enumerate(states[1:], start=1):
        tensors[f"rng.torch.rank{rank}"] = rank_state
    if trainer.device.startswith("cuda"):
        tensors["rng.cuda"] = torch.cuda.get_rng_state(trainer.device).cpu()
    sampler_json = {}
    for key, value in trainer.sampler.state_dict().items():
        if torch.is_tensor(value):
            tensors["sampler." + key] = value
        else:
            sampler_json[key] = value
    state = {"step": trainer.step, "tokens": trainer.tokens, "val_loss": None,
             "best_val_loss": trainer.best_val_loss, "elapsed": round(trainer.elapsed, 3),
             "data": trainer.dataset.name, "precision": trainer.precision, "world_size": trainer.dist.world_size,
             "train_config": trainer.config.to_dict(), "optimizer_param_groups": param_groups,
             "sampler_json": sampler_json}
    return tensors, state


def restore_state(trainer, tensors: dict, state: dict) -> dict:
    """Put optimizer, sampler and RNG states back into a freshly built trainer; returns the JSON state."""
    import torch

    from .optimizer import load_optimizer_state

    if trainer.config.fsdp and trainer.dist.enabled:
        # The moments go straight into the shards: the model is sharded here, before wrap_model would (it
        # then finds it sharded), so no rank ever holds the whole optimizer state on its device.
        from . import fsdp

        fsdp.check_supported(trainer.config, trainer.dist)
        load_optimizer_state(trainer.optimizer, {}, state["optimizer_param_groups"])   # the groups' settings
        fsdp.shard_model(trainer.model, trainer.optimizer, trainer.device, trainer.dist.world_size)
        fsdp.resume_optimizer_state(trainer.model, trainer.optimizer, tensors)
    else:
        load_optimizer_state(trainer.optimizer, tensors, state["optimizer_param_groups"])
    sampler = dict(state.get("sampler_json", {}))
    sampler.update({k[len("sampler."):]: v for k, v in tensors.items() if k.startswith("sampler.")})
    trainer.sampler.load_state_dict(sampler)
    rank = trainer.dist.rank
    key = f"rng.torch.rank{rank}" if rank and f"rng.torch.rank{rank}" in tensors else "rng.torch"
    torch.set_rng_state(tensors[key])
    if trainer.device.startswith("cuda") and "rng.cuda" in tensors:
        torch.cuda.set_rng_state(tensors["rng.cuda"], trainer.device)
    return state


def _sharded(trainer) -> bool:
    if not (trainer.config.fsdp and trainer.dist.enabled):
        return False
    from .fsdp import is_sharded

    return is_sharded(trainer.model)
