"""The optimizer (`--optimizer adamw|muon`), which parameters it updates how, and its state as plain tensors
(for safetensors, never pickle).

adamw (the default): AdamW for every parameter. Weight decay (Loshchilov & Hutter 2019, "decoupled"): each step
also shrinks weights by lr · wd · w, pulling unused directions towards 0. It is applied only to matrices (every
parameter with ≥ 2 dimensions: linear layers and the embedding table, as in nanoGPT) and not to biases or norm
gains, whose scale carries meaning and which are too few to overfit. AdamW keeps two moments per parameter
(m: mean of gradients, v: mean of squared gradients), so its state is 2 × the model's size — part of why
training needs ~4× the weights' memory (weights, grads, m, v).

muon: Muon (muon.py) for the hidden matrices — the 2-D weights inside the transformer blocks (attention's qkv and
output projection, the MLP's matrices), at `--muon-lr` — and AdamW, exactly as above, for everything else: the
token and position embeddings, the output layer (tied or not) and every vector. That split is how Muon's authors
use it: an embedding row is a lookup, not a linear map of the hidden state, and the output layer's logits want
per-entry (Adam) steps. Muon keeps one buffer per matrix, so the state is smaller than AdamW's. Attention's
qkv is one fused matrix here and is orthogonalized as one (nanochat keeps q, k and v apart, one each).

Each param group carries `peak_lr` (`--lr` for AdamW's groups, `--muon-lr` for Muon's); the trainer sets every
group's lr from the schedule applied to its own peak, so warmup and decay scale both and keep their ratio.
"""

from __future__ import annotations

import torch

from .muon import Muon


def build_optimizer(model: torch.nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                    device: str, *, kind: str = "adamw", muon_lr: float = 0.02, undecayed: tuple = ()):
    """AdamW (kind "adamw") or MuonWithAdamW (kind "muon") over the model's trainable parameters.

    `undecayed`: parameters kept out of weight decay whatever their shape — a matrix of which only some rows
    train (LoRA's new chat-token rows, training/lora.py): decay would shrink the frozen rows too."""
    hidden, decay, no_decay = split_parameters(model) if kind == "muon" else ([], *_by_dimension(model))
    keep = {id(p) for p in undecayed}
    no_decay = [p for p in decay if id(p) in keep] + no_decay
    decay = [p for p in decay if id(p) not in keep]
    adamw = _adamw([{"params": decay, "weight_decay": weight_decay, "peak_lr": lr},
                    {"params": no_decay, "weight_decay": 0.0, "peak_lr": lr}], lr, betas, device)
    if kind != "muon":
        return adamw
    # Newton–Schulz in bf16 on CUDA (as the reference), fp32 elsewhere: muon.py, "Precision".
    ns_dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    muon = Muon([{"params": hidden, "peak_lr": muon_lr}], lr=muon_lr, weight_decay=weight_decay, ns_dtype=ns_dtype)
    return MuonWithAdamW(adamw, muon)


def split_parameters(model: torch.nn.Module) -> tuple[list, list, list]:
    """(Muon's hidden matrices, AdamW's matrices with decay, AdamW's vectors without) of a GPT.

    Hidden matrices: 2-D parameters inside `model.blocks`. Everything outside the blocks (embeddings, the output
    layer when untied — tied, it *is* the token embedding — position tables) stays on AdamW."""
    inside_blocks = {id(p) for p in model.blocks.parameters()}
    hidden, decay, no_decay = [], [], []
    for p in _trainable(model):
        if p.dim() == 2 and id(p) in inside_blocks:
            hidden.append(p)
        elif p.dim() >= 2:
            decay.append(p)
        else:
            no_decay.append(p)
    return hidden, decay, no_decay


class MuonWithAdamW:
    """Muon for the hidden matrices and AdamW for the rest, stepped as one optimizer.

    To the loop and the checkpoint it looks like one torch optimizer: `param_groups` (AdamW's, then Muon's — the
    same dicts, so setting a group's lr reaches the optimizer that owns it), `step()`, `zero_grad()`, and a
    `state_dict()` numbered as one optimizer numbers its parameters (AdamW's first), which the checkpoint stores
    exactly as it stores AdamW alone."""

    def __init__(self, adamw: torch.optim.Optimizer, muon: Muon):
        self.adamw, self.muon = adamw, muon

    @property
    def param_groups(self) -> list[dict]:
        return self.adamw.param_groups + self.muon.param_groups

    def step(self) -> None:
        self.adamw.step()
        self.muon.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.adamw.zero_grad(set_to_none=set_to_none)
        self.muon.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        first, second = self.adamw.state_dict(), self.muon.state_dict()
        offset = sum(len(group["params"]) for group in first["param_groups"])
        return {"state": {**first["state"], **{offset + i: s for i, s in second["state"].items()}},
                "param_groups": first["param_groups"] + [{**g, "params": [offset + i for i in g["params"]]}
                                                         for g in second["param_groups"]]}

    def load_state_dict(self, state_dict: dict) -> None:
        groups, state = state_dict["param_groups"], state_dict["state"]
        split = len(self.adamw.param_groups)
        offset = sum(len(group["params"]) for group in groups[:split])
        self.adamw.load_state_dict({"state": {i: s for i, s in state.items() if i < offset},
                                    "param_groups": groups[:split]})
        self.muon.load_state_dict({"state": {i - offset: s for i, s in state.items() if i >= offset},
                                   "param_groups": [{**g, "params": [i - offset for i in g["params"]]}
                                                    for g in groups[split:]]})


def optimizer_state_tensors(optimizer) -> tuple[dict, list]:
    """Split optimizer.state_dict() into named tensors and JSON-able param-group settings."""
    state = optimizer.state_dict()
    tensors = {}
    for index, moments in state["state"].items():
        for key, value in moments.items():
            tensors[f"optimizer.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
    return tensors, state["param_groups"]


def load_optimizer_state(optimizer, tensors: dict, param_groups: list) -> None:
    """Put saved state into a freshly built optimizer. A group setting the checkpoint lacks (one added after
    it was written, such as `peak_lr`) keeps the fresh optimizer's value."""
    moments: dict[int, dict] = {}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, key = name.split(".", 2)
            moments.setdefault(int(index), {})[key] = value
    built = optimizer.state_dict()["param_groups"]
    groups = [{**fresh, **saved} for fresh, saved in zip(built, param_groups)] + param_groups[len(built):]
    optimizer.load_state_dict({"state": moments, "param_groups": groups})


def _adamw(groups: list[dict], lr: float, betas: tuple[float, float], device: str) -> torch.optim.AdamW:
    # The fused kernel does the whole update in one pass; available on CUDA and (torch ≥ 2.4) CPU.
    try:
        return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device in ("cuda", "cpu"))
    except (RuntimeError, TypeError):
        return torch.optim.AdamW(groups, lr=lr, betas=betas)


def _trainable(model: torch.nn.Module) -> list:
    return [p for p in model.parameters() if p.requires_grad]  # tied tensors appear once


def _by_dimension(model: torch.nn.Module) -> tuple[list, list]:
    params = _trainable(model)
    return [p for p in params if p.dim() >= 2], [p for p in params if p.dim() < 2]
