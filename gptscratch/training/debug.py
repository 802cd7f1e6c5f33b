"""`--debug` for training: find where a NaN is born.

Two instruments, both slow (≈ 1.5–3× a normal step), so they are opt-in:
  - torch.autograd anomaly detection: the backward pass checks every op's output and raises at the first
    one that produced NaN, with the forward op that created it;
  - per-step statistics: for every block, the residual stream's mean / std / max |x| / non-finite count
    (forward hooks), and for the gradients the global norm, the largest |g| and which tensor holds it, and
    the names of tensors with non-finite gradients. They go to metrics.jsonl ({"step", "debug": {...}}), so a
    blow-up can be read backwards: activations growing layer by layer, a gradient norm climbing for steps.
"""

from __future__ import annotations

import math


def _stats(tensor) -> dict:
    import torch

    t = tensor.detach().float()
    finite = torch.isfinite(t)
    bad = int((~finite).sum())
    t = t[finite] if bad else t
    if t.numel() == 0:
        return {"mean": math.nan, "std": math.nan, "max_abs": math.nan, "nonfinite": bad}
    return {"mean": round(t.mean().item(), 5), "std": round(t.std().item(), 5) if t.numel() > 1 else 0.0,
            "max_abs": round(t.abs().max().item(), 5), "nonfinite": bad}


class DebugMonitor:
    """Attach to a model for the run; `step_stats()` after backward gives the current step's numbers."""

    def __init__(self, model):
        import torch

        self.model = model
        self.activations: dict[str, dict] = {}
        self.handles = []
        self._anomaly = torch.autograd.set_detect_anomaly(True, check_nan=True)
        for index, block in enumerate(model.blocks):
            self.handles.append(block.register_forward_hook(self._hook(f"blocks.{index}")))

    def _hook(self, name: str):
        def record(module, inputs, output):
            tensor = output[0] if isinstance(output, tuple) else output
            if module.training:
                self.activations[name] = _stats(tensor)
        return record

    def step_stats(self) -> dict:
        import torch

        norms, worst, nonfinite = [], (0.0, None), []
        for name, param in self.model.named_parameters():
            if param.grad is None:
                continue
            grad = param.grad.detach().float()
            if not torch.isfinite(grad).all():
                nonfinite.append(name)
                continue
            norms.append(grad.norm())
            peak = grad.abs().max().item()
            if peak > worst[0]:
                worst = (peak, name)
        grad_norm = torch.stack(norms).norm().item() if norms else math.nan
        return {"grad_norm": round(grad_norm, 6), "grad_max_abs": round(worst[0], 6), "grad_max_at": worst[1],
                "grad_nonfinite": nonfinite, "activations": dict(self.activations)}

    def diagnosis(self) -> str:
        """Where the last forward pass first went non-finite (for the NaN error message)."""
        for name, stats in self.activations.items():
            if stats["nonfinite"]:
                return f"first non-finite activations in {name}"
        return "activations were finite; look at the gradient statistics in metrics.jsonl"

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()
        self._anomaly.__exit__(None, None, None)
