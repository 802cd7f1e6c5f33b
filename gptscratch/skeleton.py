"""Where to build a model whose weights are about to be read from a file (checkpoint.load_checkpoint).

The model's constructor draws random initial weights that loading then throws away. On PyTorch's `meta` device
nothing is drawn or allocated (tensors have shapes only), which matters for a large model: no second copy in
memory, no seconds of random numbers. But the first tensor initialised on the meta device makes PyTorch import
its compiler (~1.2 s), a fixed cost every command that loads a checkpoint would pay. For a small model, building
it for real is cheaper than that import, so it is built on the CPU, with torch's random state put back after.
"""

from __future__ import annotations

import contextlib

# Below this many parameters a model is built for real before its weights are replaced by the file's: drawing ~20M
# random numbers takes ~0.1 s, less than the ~1.2 s PyTorch spends importing its compiler the first time it
# initialises a tensor on the meta device. Above it, the meta device saves the time and the memory of a second copy.
SMALL_MODEL_PARAMETERS = 20_000_000


@contextlib.contextmanager
def skeleton_device(model_config):
    """Where to build a model whose weights are about to be loaded: the meta device (shapes only: no memory, no
    random numbers), or for a small model the CPU, with torch's random state left as it was (the loaded tensors,
    on whatever device, then replace every parameter)."""
    import torch

    c = model_config
    parameters = c.vocab_size * c.d_model * 2 + c.n_layer * 12 * c.d_model ** 2
    if parameters > SMALL_MODEL_PARAMETERS:
        with torch.device("meta"):
            yield
        return
    with torch.random.fork_rng(devices=[]), torch.device("cpu"):
        yield
