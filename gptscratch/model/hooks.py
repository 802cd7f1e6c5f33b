"""Hook points: named places where an activation can be read or replaced.

Interpretability tools (logit lens, attention patterns, activation patching) need to see — and sometimes
overwrite — the tensors flowing through the model. Rather than threading flags through every forward, each
interesting activation passes through a `HookPoint`: an identity module with a stable name such as
`blocks.3.hook_resid_post` or `blocks.0.attn.hook_pattern` (TransformerLens's naming convention).

PyTorch forward hooks do the rest: a hook registered on a HookPoint receives the activation and may return a
replacement. With no hook registered a HookPoint is a plain function call that returns its input, so the
model pays (almost) nothing when no one is looking.

    model.hook_points()                      # {name: HookPoint}
    handle = model.hook_points()["blocks.0.hook_resid_post"].register_forward_hook(fn)
    handle.remove()
"""

from __future__ import annotations

from torch import nn


class HookPoint(nn.Module):
    """Identity on the forward pass; a named place to attach `register_forward_hook` callbacks."""

    def forward(self, x):
        return x

    @property
    def has_hooks(self) -> bool:
        return bool(self._forward_hooks) or bool(self._forward_pre_hooks)
