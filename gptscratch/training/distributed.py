"""Data-parallel training across processes (torchrun): who am I, and how the ranks agree.

`torchrun --nproc_per_node=N -m gptscratch train ...` starts N copies of the same command with RANK,
LOCAL_RANK and WORLD_SIZE in the environment. Each copy holds the whole model; DistributedDataParallel (DDP)
all-reduces (averages) the gradients during backward, so after every optimizer step the weights are equal
on every rank. The split of work:

    global batch per optimizer step = batch_size × context_length × grad_accum    (the same for any N)
    each rank runs grad_accum / N micro-batches of its own disjoint windows      (WindowSampler rank slices)
    averaging over ranks × dividing each loss by grad_accum / N  =  the mean over all grad_accum micro-batches

so N ranks compute the same update as one process would (up to float summation order). Only rank 0 logs
and writes checkpoints. Backends: NCCL on CUDA (one GPU per LOCAL_RANK), gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def from_environment() -> DistContext:
    """The rank layout torchrun put in the environment (a single process when there is none)."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    return DistContext(rank=int(os.environ.get("RANK", "0") or 0),
                       local_rank=int(os.environ.get("LOCAL_RANK", "0") or 0), world_size=world)


def init(device: str) -> tuple[DistContext, str]:
    """Join the process group if launched by torchrun; return the context and this rank's device."""
    ctx = from_environment()
    if not ctx.enabled:
        return ctx, device
    import torch
    import torch.distributed as dist

    if device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device == "cpu":
        backend = "gloo"
    else:
        raise UsageError(f"distributed training supports cuda and cpu, not {device}; run a single process "
                         "or pass --device cpu")
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return ctx, device


def shared_accumulation(grad_accum: int, ctx: DistContext, resuming: bool = False) -> int:
    """The global micro-batch count N ranks can share evenly: grad_accum rounded up to a multiple of N, so a
    preset (grad_accum 1) runs unchanged under torchrun — each rank then runs grad_accum / N micro-batches. A
    resumed run must keep its step size, so there a count that does not divide is a UsageError."""
    if grad_accum % ctx.world_size == 0:
        return grad_accum
    if resuming:
        raise UsageError(f"the run was set up with --grad-accum {grad_accum}, which does not divide among "
                         f"{ctx.world_size} processes; resume it with a number of processes that divides "
                         f"{grad_accum}")
    return -(-grad_accum // ctx.world_size) * ctx.world_size


def reduce_mean(value: float, ctx: DistContext, device: str) -> float:
    """The mean of a float over all ranks (itself when single-process)."""
    return _reduce(value, ctx, device, "avg")


def reduce_sum(value: float, ctx: DistContext, device: str) -> float:
    """The sum of a float over all ranks (itself when single-process)."""
    return _reduce(value, ctx, device, "sum")


def reduce_max(value: float, ctx: DistContext, device: str) -> float:
    return _reduce(value, ctx, device, "max")


def _reduce(value: float, ctx: DistContext, device: str, how: str) -> float:
    if not ctx.enabled:
        return value
    import torch
    import torch.distributed as dist

    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX if how == "max" else dist.ReduceOp.SUM)
    result = tensor.item()
    return result / ctx.world_size if how == "avg" else result


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def gather_objects(obj, ctx: DistContext) -> list:
    """Every rank's `obj`, in rank order (on every rank)."""
    if not ctx.enabled:
        return [obj]
    import torch.distributed as dist

    result = [None] * ctx.world_size
    dist.all_gather_object(result, obj)
    return result


def teardown(ctx: DistContext, clean: bool = True) -> None:
    """Leave the process group. Robust on purpose: after a clean run, a barrier first so no rank tears down
    while another is still talking to it (once in 9 gloo runs here, destroy_process_group aborted a rank
    without it); after an error no barrier (the other ranks may never arrive); failures at this point are
    swallowed — the run's results are already written by then."""
    if not ctx.enabled:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    if clean:
        try:
            dist.barrier()
        except Exception:  # noqa: BLE001 - a peer that already left: nothing to synchronise with
            pass
    try:
        dist.destroy_process_group()
    except Exception:  # noqa: BLE001
        pass
