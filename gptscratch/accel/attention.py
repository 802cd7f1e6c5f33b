"""bf16 training on CPU: the fused attention kernel, with its backward pass computed in fp32 where that pays.

Under bf16 autocast the queries, keys and values reach attention in bf16, and PyTorch's fused CPU kernel runs
both passes in bf16. On some CPUs its bf16 *backward* is several times slower than the fp32 one (about 3× on a
2-core Xeon with AMX: docs/benchmarks.md), enough to make bf16 training slower than fp32 for small models. `CausalAttentionFp32Backward` keeps the bf16 forward and
computes the gradients by running the same public kernel again in fp32 and differentiating it with autograd:

    forward:   out = sdpa(q, k, v, causal)                       in the inputs' dtype (bf16)
    backward:  out32 = sdpa(q.float(), k.float(), v.float())      recomputed in fp32
               dq, dk, dv = ∂out32/∂(q, k, v) · grad_out          cast back to bf16

The gradients are those of the fp32 attention at the same inputs — closer to exact than the bf16 kernel's. The
extra fp32 forward is the price; whether it pays is measured at the model's own shape (`training_attention`)
and remembered, so machines where the bf16 backward is fast keep PyTorch's kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import kernels
from .measure import measured, time_candidates


class CausalAttentionFp32Backward(torch.autograd.Function):
    """Causal fused attention: forward in the inputs' dtype, backward recomputed and differentiated in fp32."""

    @staticmethod
    def forward(ctx, q, k, v):
        ctx.save_for_backward(q, k, v)
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v = ctx.saved_tensors
        with torch.enable_grad(), torch.autocast(q.device.type, enabled=False):
            q32, k32, v32 = (t.detach().float().requires_grad_() for t in (q, k, v))
            out = F.scaled_dot_product_attention(q32, k32, v32, is_causal=True)
            grads = torch.autograd.grad(out, (q32, k32, v32), grad_out.float())
        return tuple(g.to(t.dtype) for g, t in zip(grads, (q, k, v)))


def fp32_backward_attention(q, k, v, mask=None, dropout: float = 0.0, is_causal: bool = False):
    """The `attention` kernel: the fp32-backward Function for unmasked causal bf16 self-attention that needs
    gradients; PyTorch's kernel for everything else."""
    if (is_causal and mask is None and not dropout and q.dtype == torch.bfloat16 and torch.is_grad_enabled()
            and q.size(-2) == k.size(-2) and (q.requires_grad or k.requires_grad or v.requires_grad)):
        return CausalAttentionFp32Backward.apply(q, k, v)
    return kernels.DEFAULT.attention(q, k, v, mask, dropout, is_causal)


def training_attention(batch: int, n_head: int, length: int, head_dim: int) -> str:
    """"pytorch" or "fp32-backward": the faster fwd+bwd of bf16 causal attention at this shape on this CPU."""
    def measure() -> dict:
        generator = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(batch, n_head, length, head_dim, generator=generator).bfloat16().requires_grad_()
                   for _ in range(3))
        kernels_to_try = {"pytorch": kernels.DEFAULT.attention, "fp32-backward": fp32_backward_attention}

        def step(attention):
            return lambda: attention(q, k, v, None, 0.0, True).sum().backward()
        seconds = time_candidates({name: step(a) for name, a in kernels_to_try.items()}, budget=0.3)
        return {"best": min(seconds, key=seconds.get), "seconds": seconds}

    return measured("cpu", f"bf16 attention B{batch} nh{n_head} T{length} hs{head_dim}", measure)["best"]
