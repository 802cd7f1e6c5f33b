"""AdamW with weight-decay groups, and its state as plain tensors (for safetensors, never pickle).

Weight decay (Loshchilov & Hutter 2019, "decoupled"): each step also shrinks weights by lr · wd · w, pulling
unused directions towards 0. It is applied only to matrices (every parameter with ≥ 2 dimensions: linear
layers and the embedding table, as in nanoGPT) and not to biases or LayerNorm gains, whose scale carries
meaning and which are too few to overfit.

AdamW keeps two moments per parameter (m: mean of gradients, v: mean of squared gradients), so its state is
2 × the model's size — part of why training needs ~4× the weights' memory (weights, grads, m, v).
"""

from __future__ import annotations

import torch


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                    device: str) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]  # tied tensors appear once
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # The fused kernel does the whole update in one pass; available on CUDA and (torch ≥ 2.4) CPU.
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device in ("cuda", "cpu"))
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr, betas=betas)


def optimizer_state_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict, list]:
    """Split optimizer.state_dict() into named tensors and JSON-able param-group settings."""
    state = optimizer.state_dict()
    tensors = {}
    for index, moments in state["state"].items():
        for key, value in moments.items():
            tensors[f"optimizer.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state["param_groups"]


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict, param_groups: list) -> None:
    moments: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            moments.setdefault(int(index), {})[key] = value
    optimizer.load_state_dict({"state": moments, "param_groups": param_groups})
