"""Muon — MomentUm Orthogonalized by Newton–Schulz: an optimizer for a network's hidden weight matrices.

Keller Jordan et al. 2024, https://kellerjordan.github.io/posts/muon/ ; the optimizer of the modded-nanogpt
speedruns and of nanochat. One step for a weight matrix W (m × n) with gradient G:

    M ← μ·M + (1 − μ)·G                   momentum buffer (μ = 0.95), kept per matrix
    U ← (1 − μ)·G + μ·M                   Nesterov: the gradient, pulled one step further along the momentum
    O ← NewtonSchulz(U)                   U's directions with every singular value set to about 1
    W ← W − lr·wd·W                       decoupled weight decay (Loshchilov & Hutter 2019)
    W ← W − lr·√max(1, m/n)·O             the step

Why orthogonalize. The update of a transformer's matrices is close to low-rank: a few directions carry almost all
of its size, so SGD and Adam spend their step on those and barely move the rest. Write U = A·Σ·Bᵀ (its SVD);
Muon steps along O = A·Bᵀ instead — the same directions, each with the same size. Rare directions learn as fast
as the dominant ones, and the step's size no longer depends on the gradient's scale (‖O‖ is ≈ 1 whatever ‖U‖).

Newton–Schulz: A·Bᵀ without an SVD. An odd matrix polynomial acts on the singular values alone:

    p(X) = a·X + b·(X·Xᵀ)·X + c·(X·Xᵀ)²·X   and for X = A·Σ·Bᵀ,   p(X) = A·p(Σ)·Bᵀ,   p(σ) = aσ + bσ³ + cσ⁵

so iterating X ← p(X) moves every singular value along the scalar map σ ← p(σ) and leaves the directions alone.
Start from X = U / ‖U‖_F (the Frobenius norm bounds the largest singular value, so every σ is in [0, 1]). The
coefficients (a, b, c) = (3.4445, −4.7750, 2.0315) make the slope at 0 as steep as possible (a small σ grows by
≈ 3.4 per iteration, ≈ 480× in five) at the price of not converging exactly: after 5 iterations every σ that
started above 0.0015 (in units of ‖U‖_F) lands in about [0.68, 1.2] — which trains as well as exactly 1, and is
what tests/test_optimizer_muon.py checks. A singular value of exactly 0 stays 0: no direction is invented.

Cost: per iteration X·Xᵀ (2m²n FLOPs, with m ≤ n after transposing a tall matrix), its square (2m³) and the
product with X (2m²n); 5 iterations of a d × 4d MLP matrix ≈ 90·d³ FLOPs, against 6·(4d²)·tokens for that
matrix's forward and backward — 3.75·d / tokens-per-step of it (5·d / tokens for a square d × d matrix).
Negligible at a GPU's 0.5M-token step, noticeable on a CPU recipe's ~1k-token step (docs/training.md,
"--optimizer adamw|muon").

Precision: bf16 on CUDA, as the reference does (tensor cores; the iteration tolerates the rounding), fp32
everywhere else. On CPUs bf16 matrix products range from ~1.5× faster (AVX512-BF16) to 13–25× slower (AVX2
without it), fp32 is never slow; and fp32 keeps directions the update does not have at ≈ 0 where bf16's rounding
noise in them gets the ×480 too (a rank-4 matrix's other singular values came out at ~0.3 in bf16, ~1e-5 in fp32).

Scale: √max(1, m/n), the reference's rule (Keller Jordan's Muon, torch.optim.Muon's adjust_lr_fn="original").
O's min(m, n) singular values ≈ 1 spread over m·n entries; scaled so, every matrix's update has entries of RMS
≈ 1/√n (n: its inputs), tall (the fused qkv, an MLP's up projection) or wide alike. The learning rate for it is
around 0.02 (`--muon-lr`), not AdamW's.

Against torch.optim.Muon (in torch 2.13; the tests' reference): the same step, momentum in the same
exponential-average form, the same iteration (with ns_dtype=bf16 the same arithmetic), decay by the unscaled lr.
This one exists to be read, to choose fp32 off CUDA, and to keep the learning-rate schedule's group settings.
"""

from __future__ import annotations

import math

import torch

# The quintic iteration's coefficients and step count (Jordan et al. 2024).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5


def newton_schulz(update: torch.Tensor, steps: int = NS_STEPS, dtype: torch.dtype = torch.float32,
                  eps: float = 1e-7) -> torch.Tensor:
    """An approximately orthogonal matrix with the directions of `update` (m × n): A·S'·Bᵀ, S' ≈ 1 (see above).

    Returned in `dtype`; the caller casts it to the parameter's dtype."""
    a, b, c = NS_COEFFICIENTS
    x = update.to(dtype)
    tall = x.size(0) > x.size(1)
    if tall:
        x = x.T                              # work on the wide side: X·Xᵀ is then the smaller (m × m) matrix
    x = x / x.norm().clamp(min=eps)          # every singular value into [0, 1]
    for _ in range(steps):
        gram = x @ x.T                                          # X·Xᵀ                        (m, m)
        poly = torch.addmm(gram, gram, gram, beta=b, alpha=c)   # b·X·Xᵀ + c·(X·Xᵀ)²          (m, m)
        x = torch.addmm(x, poly, x, beta=a)                     # a·X + (b·X·Xᵀ + c·(X·Xᵀ)²)·X (m, n)
    return x.T if tall else x


def update_scale(shape: torch.Size) -> float:
    """√max(1, rows / cols): a tall matrix's orthogonal update has smaller entries; this evens them out."""
    rows, cols = shape
    return math.sqrt(max(1.0, rows / cols))


class Muon(torch.optim.Optimizer):
    """Muon for 2-D parameters (a transformer block's matrices). Embeddings, the output layer and vectors belong
    on AdamW (training/optimizer.py pairs the two).

    State per parameter: `momentum_buffer` (same shape), saved in checkpoints like AdamW's moments.
    `ns_dtype` (not a group setting: group settings are saved as JSON) is where Newton–Schulz runs."""

    def __init__(self, params, lr: float = 0.02, momentum: float = 0.95, nesterov: bool = True,
                 weight_decay: float = 0.0, ns_steps: int = NS_STEPS, ns_dtype: torch.dtype = torch.float32):
        defaults = dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay, ns_steps=ns_steps)
        super().__init__(params, defaults)
        self.ns_dtype = ns_dtype
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"Muon updates matrices only; got a parameter of shape {tuple(p.shape)} "
                                     "(give it to AdamW)")

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad, state = p.grad, self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(grad)
                buffer = state["momentum_buffer"]
                buffer.lerp_(grad, 1 - momentum)                                # M ← μ·M + (1 − μ)·G
                update = grad.lerp(buffer, momentum) if group["nesterov"] else buffer
                direction = newton_schulz(update, group["ns_steps"], self.ns_dtype)
                p.mul_(1 - lr * decay)
                p.add_(direction.to(p.dtype), alpha=-lr * update_scale(p.shape))
        return loss
