"""LoRA: fine-tuning through small low-rank adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large
Language Models", arXiv:2106.09685).

Full fine-tuning changes every weight matrix W (out, in) of the model. LoRA freezes W and learns only a change
of low rank r, written as the product of two thin matrices:

    y = W x + b + (α / r) · B A x          x (..., in) → y (..., out)

        W (out, in), b (out,)    the pretrained layer, frozen
        A (r, in)                trainable: projects the input down to r numbers
        B (out, r)               trainable: projects them back up to the output width
        α                        a fixed scale (lora_alpha), r the rank (lora_rank), r ≪ min(in, out)

Parameters: the adapter has r·(in + out) instead of in·out. Worked example, gptscratch's `small` size
(d_model 256, d_ff 1024): attention's qkv layer is (768, 256), 196,608 weights; its rank-8 adapter has
8·(256 + 768) = 8,192, 4.2 %. Over a whole block (qkv, proj, up, down) that is 32,768 trainable numbers instead
of 786,432. Fewer trainable numbers means fewer gradients and far fewer optimizer moments (AdamW keeps two per
trainable parameter), which is where fine-tuning memory goes; the frozen weights are only read.

Why B starts at zero (and A at random, like nn.Linear's kaiming-uniform init): B A = 0, so at step 0 the wrapped
model computes exactly what the pretrained one does — fine-tuning starts from the model, not from a perturbed
copy of it. A cannot be zero too: the gradient of B is (α/r)·(∂L/∂y)·(A x)ᵀ, which would then vanish forever.

Why the (α / r) scale: with A initialised at a fixed scale, the size of B A x grows with r; dividing by r keeps
the update's size (and so a good learning rate) roughly the same when r is changed, and α sets it once.

Merging: after training the product folds into the weight, W' = W + (α / r) · B A, and the layer is a plain
Linear again (`merge_lora`): no extra cost at inference, and every converter and exporter reads it as usual.

Dropout (lora_dropout) applies to the adapter's input only, as in the paper's reference implementation.

    LoRALinear          a Linear with an adapter; its `weight` and `bias` are the base layer's own Parameters
    apply_lora(model, rank, alpha, dropout, targets)   wrap the named layers of every block, freeze the rest
    merge_lora(model)   fold every adapter into its weight, in place
    lora_state_dict / base_state_dict   the adapter tensors only / everything else
    has_lora, lora_settings             is there an adapter, and with which settings
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import nn

from . import kernels
from .layers import Linear

# The Linear layers of a block that can get adapters: attention's (attention.py) and the MLP's (feedforward.py;
# `gate` exists only in gated MLPs).
TARGETS = ("qkv", "proj", "gate", "up", "down")
ADAPTER_NAMES = ("lora_A", "lora_B")


def fold(weight: torch.Tensor, lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float) -> torch.Tensor:
    """W + scaling · B A, computed in (at least) fp32 and returned in W's dtype. W (out, in), A (r, in), B (out, r)."""
    compute = torch.promote_types(weight.dtype, torch.float32)
    delta = lora_B.to(compute) @ lora_A.to(compute)                                   # (out, in)
    return (weight.to(compute) + scaling * delta).to(weight.dtype)


class LoRALinear(Linear):
    """A Linear layer plus a low-rank adapter: y = x Wᵀ + b + (α/r) · (x Aᵀ) Bᵀ (module docstring).

    It adopts the wrapped layer's Parameters rather than holding the layer as a submodule, so the state-dict
    names of the base stay exactly what they were (`blocks.0.attn.qkv.weight`, not `...qkv.base.weight`) and
    only `lora_A` / `lora_B` are new: a checkpoint's base weights, the converters and the exporters keep
    working by name, and decoding kernels that recognise a layer by its weight (accel/decoding.py) still do.
    """

    def __init__(self, base: Linear, rank: int, alpha: float, dropout: float = 0.0):
        nn.Module.__init__(self)   # not Linear.__init__: it would allocate and initialise a new weight
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias                # the same Parameters, same names
        if hasattr(base, "is_residual_projection"):
            self.is_residual_projection = base.is_residual_projection
        self.rank, self.alpha, self.scaling = rank, alpha, alpha / rank
        factory = dict(device=base.weight.device, dtype=base.weight.dtype)
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, **factory))    # (r, in)
        self.lora_B = nn.Parameter(torch.empty(self.out_features, rank, **factory))   # (out, r)
        self.lora_dropout = nn.Dropout(dropout)
        self.reset_adapter()

    def reset_adapter(self) -> None:
        """A as nn.Linear initialises its weight (kaiming-uniform), B = 0: the adapter adds nothing yet."""
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B)

    def forward(self, x):
        linear = kernels.active().linear
        base = linear(x, self.weight, self.bias)                         # (..., out): the frozen layer
        down = linear(self.lora_dropout(x), self.lora_A)                 # (..., r)
        return base + self.scaling * linear(down, self.lora_B)          # (..., out)

    def merged(self) -> Linear:
        """A plain Linear computing the same function: weight W + (α/r)·B A, the same bias."""
        with torch.no_grad():
            weight = fold(self.weight, self.lora_A, self.lora_B, self.scaling)
        plain = Linear(self.in_features, self.out_features, bias=self.bias is not None, device="meta")
        plain.weight = nn.Parameter(weight, requires_grad=self.weight.requires_grad)
        plain.bias = self.bias
        if hasattr(self, "is_residual_projection"):
            plain.is_residual_projection = self.is_residual_projection
        return plain

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, rank={self.rank}, alpha={self.alpha}, dropout={self.lora_dropout.p}"


def parse_targets(targets: str | Iterable[str]) -> tuple[str, ...]:
    """"qkv,up" or ["qkv", "up"] → ("qkv", "up") in TARGETS order; ValueError naming the valid ones."""
    names = [t.strip() for t in (targets.split(",") if isinstance(targets, str) else targets)]
    names = [t for t in names if t]
    unknown = [t for t in names if t not in TARGETS]
    if unknown or not names:
        what = f"unknown LoRA target {', '.join(map(repr, unknown))}" if unknown else "no LoRA targets given"
        raise ValueError(f"{what}; choose from {', '.join(TARGETS)} (comma-separated)")
    return tuple(t for t in TARGETS if t in names)


def apply_lora(model: nn.Module, rank: int, alpha: float = 16.0, dropout: float = 0.0,
               targets: str | Iterable[str] = TARGETS) -> list[str]:
    """Wrap the `targets` Linear layers of every block of `model` in LoRALinear (absent ones, such as `gate` in
    a standard MLP, are skipped), and freeze every other parameter: afterwards only the adapters have
    requires_grad. Returns the names of the wrapped layers ("blocks.0.attn.qkv", ...). ValueError for bad
    settings, unknown targets, no layer matched, or a model that already has adapters."""
    if not isinstance(rank, int) or rank < 1 or not alpha > 0 or not 0 <= dropout < 1:
        raise ValueError(f"LoRA needs rank ≥ 1, alpha > 0 and dropout in [0, 1) (got {rank}, {alpha}, {dropout})")
    wanted = parse_targets(targets)
    if has_lora(model):
        raise ValueError("the model already has LoRA adapters; merge them first (merge_lora)")
    found = [(name, parent, child_name, child)
             for name, parent in model.blocks.named_modules(prefix="blocks")
             for child_name, child in parent.named_children()
             if child_name in wanted and isinstance(child, Linear)]
    if not found:
        raise ValueError(f"no layer of this model is one of {', '.join(wanted)}")
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for _, parent, child_name, child in found:
        # A new module starts in training mode: follow the layer's, so an eval-mode model drops nothing.
        setattr(parent, child_name, LoRALinear(child, rank, alpha, dropout).train(child.training))
    return [f"{name}.{child_name}" for name, _, child_name, _ in found]


def merge_lora(model: nn.Module) -> list[str]:
    """Replace every LoRALinear of `model` by its merged plain Linear, in place; returns the merged names.
    Other parameters keep their requires_grad (frozen ones stay frozen)."""
    found = [(name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    for name, module in found:
        parent_name, _, child_name = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child_name, module.merged())
    return [name for name, _ in found]


def is_adapter_name(name: str) -> bool:
    """Is this state-dict key an adapter tensor (`....lora_A` / `....lora_B`)?"""
    return name.rpartition(".")[2] in ADAPTER_NAMES


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter tensors only (`blocks.0.attn.qkv.lora_A`, ...): what fine-tuning changed."""
    return {name: t for name, t in model.state_dict().items() if is_adapter_name(name)}


def base_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Everything but the adapters: the state dict of the model before apply_lora, under the same names."""
    return {name: t for name, t in model.state_dict().items() if not is_adapter_name(name)}


def has_lora(model: nn.Module) -> bool:
    """Does `model` have at least one LoRALinear layer (unmerged adapters)?"""
    return any(isinstance(m, LoRALinear) for m in model.modules())


def lora_settings(model: nn.Module) -> dict | None:
    """{"rank", "alpha", "dropout", "targets"} of the model's adapters (what apply_lora needs to rebuild them),
    or None without adapters. ValueError if the layers were wrapped with different settings."""
    layers = {name: m for name, m in model.named_modules() if isinstance(m, LoRALinear)}
    if not layers:
        return None
    settings = {(m.rank, m.alpha, m.lora_dropout.p) for m in layers.values()}
    if len(settings) > 1:
        raise ValueError(f"the model's adapters have different settings {sorted(settings)}")
    (rank, alpha, dropout), = settings
    present = {name.rpartition(".")[2] for name in layers}
    return {"rank": rank, "alpha": alpha, "dropout": dropout, "targets": [t for t in TARGETS if t in present]}


def merge_state_dict(state: dict[str, torch.Tensor], alpha: float) -> dict[str, torch.Tensor]:
    """A LoRA model's state dict with every adapter folded into its weight (W + (α/r)·B A, r read from A's
    shape) and the adapter tensors dropped: the state dict of the merged model."""
    merged = {name: t for name, t in state.items() if not is_adapter_name(name)}
    for name, lora_A in state.items():
        if name.endswith(".lora_A"):
            layer = name[: -len(".lora_A")]
            merged[f"{layer}.weight"] = fold(state[f"{layer}.weight"], lora_A, state[f"{layer}.lora_B"],
                                             alpha / lora_A.size(0))
    return merged
