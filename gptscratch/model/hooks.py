"""Hook points: named places where an activation can be read or replaced.

Interpretability tools (logit lens, attention patterns, activation patching) need to see — and sometimes
overwrite — the tensors flowing through the model. Rather than threading flags through every forward, each
interesting activation passes through a `HookPoint`: an identity module with a stable name such as
`blocks.3.hook_resid_post` or `blocks.0.attn.hook_pattern` (TransformerLens's naming convention; Nanda &
Bloom 2022).

PyTorch forward hooks do the rest: a hook registered on a HookPoint receives the activation and may return a
replacement.

    model.hook_points()                      # {name: HookPoint}
    handle = model.hook_points()["blocks.0.hook_resid_post"].register_forward_hook(fn)   # fn(module, args, out)
    handle.remove()

Cost when nobody is looking: a HookPoint counts the hooks registered on it, and with none it returns its input
without entering nn.Module's call machinery — one attribute test per activation, so training and generation
pay nothing for hooks nobody registered (benchmarks/train_vs_nanogpt.py measures the whole step).
"""

from __future__ import annotations

from torch import nn


class CountedHandle:
    """A hook's removable handle that also keeps its HookPoint's count of live hooks right."""

    def __init__(self, point: "HookPoint", handle):
        self.point, self.handle, self.removed = point, handle, False

    def remove(self) -> None:
        if not self.removed:
            self.removed = True
            self.handle.remove()
            self.point.hook_count -= 1

    def __enter__(self) -> "CountedHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()


class HookPoint(nn.Module):
    """Identity on the forward pass; a named place to attach `register_forward_hook` callbacks."""

    def __init__(self):
        super().__init__()
        self.hook_count = 0     # hooks registered here and not yet removed

    @property
    def has_hooks(self) -> bool:
        return self.hook_count > 0

    def register_forward_hook(self, hook, **kwargs) -> CountedHandle:
        self.hook_count += 1
        return CountedHandle(self, super().register_forward_hook(hook, **kwargs))

    def register_forward_pre_hook(self, hook, **kwargs) -> CountedHandle:
        self.hook_count += 1
        return CountedHandle(self, super().register_forward_pre_hook(hook, **kwargs))

    def __call__(self, x):
        # Unobserved (training, generation): the identity, without nn.Module's call machinery.
        return super().__call__(x) if self.hook_count else x

    def forward(self, x):
        return x
