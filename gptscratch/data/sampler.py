"""Training and evaluation batches: windows of context_length + 1 tokens from a token split.

A batch is B windows starting at offsets o_i, read from the (memory-mapped) split:
    x[i] = tokens[o_i : o_i + T]        y[i] = tokens[o_i + 1 : o_i + T + 1]
so y is x shifted by one: the model predicts every next token of every window. Windows may
cross document boundaries; the EOT between documents tells the model where a new text
starts. Only B * (T + 1) tokens are read per batch, whatever the dataset size.

WindowSampler (training): offsets are uniform over all N - T valid starts, drawn from a
torch.Generator seeded with `seed`, so the stream is reproducible, and `state_dict()` /
`load_state_dict()` resume it exactly. Distributed: every rank runs the same generator, draws
the offsets of the *global* batch (B * world_size windows) and keeps its own slice
[rank * B, (rank + 1) * B) -- ranks see disjoint windows of one stream, and 2 ranks x B
windows equal 1 rank x 2B windows.

eval_batches (validation): no randomness at all -- num_batches * B * world_size windows at
evenly spaced offsets across the split, so every evaluation sees the same tokens and losses
are comparable between steps and runs.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from gptscratch.errors import UsageError


def _check_arguments(tokens, split: str, batch_size: int, context_length: int, rank: int, world_size: int) -> None:
    if batch_size < 1 or context_length < 1:
        raise UsageError(
            f"batch size and context length must be >= 1 (got {batch_size} and {context_length}); pass positive values"
        )
    if world_size < 1 or not 0 <= rank < world_size:
        raise UsageError(f"rank {rank} is outside world size {world_size}; launch with torchrun so they agree")
    if len(tokens) < context_length + 1:
        raise UsageError(
            f"the {split} split has {len(tokens)} tokens, fewer than context length + 1 = {context_length + 1}; "
            "use a smaller --context-length or more text"
        )


def _read_windows(tokens, offsets: list[int], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = np.stack([np.asarray(tokens[offset : offset + length]) for offset in offsets]).astype(np.int64)
    windows = torch.from_numpy(rows)
    return windows[:, :-1].contiguous(), windows[:, 1:].contiguous()


class WindowSampler:
    """Random (x, y) batches of shape (batch_size, context_length), int64 on the CPU."""

    def __init__(self, dataset, split: str, batch_size: int, context_length: int, seed: int,
                 rank: int = 0, world_size: int = 1):
        self.tokens = dataset.tokens(split)
        _check_arguments(self.tokens, split, batch_size, context_length, rank, world_size)
        self.split, self.batch_size, self.context_length = split, batch_size, context_length
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_drawn = 0

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = len(self.tokens) - self.context_length  # valid offsets: 0 .. N - T - 1
        global_offsets = torch.randint(0, starts, (self.batch_size * self.world_size,), generator=self.generator)
        mine = global_offsets[self.rank * self.batch_size : (self.rank + 1) * self.batch_size].tolist()
        self.batches_drawn += 1
        return _read_windows(self.tokens, mine, self.context_length + 1)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    def reset(self) -> None:
        """Back to the first batch of the stream."""
        self.generator.manual_seed(self.seed)
        self.batches_drawn = 0

    def state_dict(self) -> dict:
        return {
            "split": self.split,
            "seed": self.seed,
            "batches_drawn": self.batches_drawn,
            "generator_state": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Continue exactly where `state` was taken. Without "generator_state" (e.g. a state
        stored as JSON) the stream is replayed from the seed for `batches_drawn` batches."""
        self.seed = int(state.get("seed", self.seed))
        generator_state = state.get("generator_state")
        if generator_state is not None:
            self.generator.set_state(torch.as_tensor(generator_state, dtype=torch.uint8))
            self.batches_drawn = int(state.get("batches_drawn", 0))
        else:
            self.reset()
            starts = len(self.tokens) - self.context_length  # same draws as next_batch, same state
            for _ in range(int(state.get("batches_drawn", 0))):
                torch.randint(0, starts, (self.batch_size * self.world_size,), generator=self.generator)
                self.batches_drawn += 1


def eval_batches(dataset, split: str, batch_size: int, context_length: int, num_batches: int,
                 rank: int = 0, world_size: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Deterministic (x, y) batches at evenly spaced offsets (see module docstring)."""
    tokens = dataset.tokens(split)
    _check_arguments(tokens, split, batch_size, context_length, rank, world_size)
    if num_batches < 1:
        raise UsageError(f"number of evaluation batches must be >= 1, got {num_batches}; pass a positive value")
    per_batch = batch_size * world_size
    last_start = len(tokens) - context_length - 1
    offsets = np.linspace(0, last_start, num_batches * per_batch).round().astype(np.int64).tolist()
    for batch in range(num_batches):
        first = batch * per_batch + rank * batch_size
        yield _read_windows(tokens, offsets[first : first + batch_size], context_length + 1)
