"""The fused attention kernel, with one CPU-specific repair: bf16 forward, fp32 backward.

`F.scaled_dot_product_attention` computes softmax(QKᵀ/√hs + causal mask) V in one fused ("flash") kernel that
never materialises the (T, T) weights. Its maths is exactly attention.attention_explicit's; tests prove they
agree. This file changes only *which precision the CPU kernel's backward pass runs in* under bf16 autocast.

Why: on CPU, PyTorch's flash-attention *forward* in bf16 uses the AMX/AVX512-bf16 tile kernels and is faster than
fp32, but its bf16 *backward* is not. Measured fwd+bwd on a 2-core Xeon with AMX (torch 2.13, B=8, nh=4, 2 threads):

    shape (T, hs)       fp32       bf16      bf16 forward + fp32 backward (this file)
    (128, 32)  mini    1.8 ms     5.9 ms     1.8 ms
    (256, 64)  small   ≈12 ms     9.9 ms     9.8 ms   (1 thread: 18.8 → 17.1 ms)

At the `mini` size the bf16 backward alone cost ~16 ms of a ~48 ms training step, which made bf16 autocast
*slower* than fp32 there; with the fp32 backward the step takes ~28 ms against fp32's ~39 ms. The gradients are
those of the same bf16 forward, computed with fp32 arithmetic — closer to exact than the bf16 kernel's (checked
against fp64 in tests/test_model_fused_attention.py), and the forward is bit for bit the standard one.

It applies only where it pays and is safe: CPU, bf16 inputs, gradients wanted, causal self-attention without a
mask or dropout, and a PyTorch whose CPU kernel halves (private `aten` ops) exist and pass a one-time tiny check
against the public kernel. Everything else calls `F.scaled_dot_product_attention` unchanged.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

_CPU_FORWARD = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_CPU_BACKWARD = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)


class _CausalFlashBf16ForwardFp32Backward(torch.autograd.Function):
    """Causal flash attention: the CPU kernel's forward in the inputs' dtype, its backward in fp32."""

    @staticmethod
    def forward(ctx, q, k, v):
        out, logsumexp = _CPU_FORWARD(q, k, v, 0.0, True)   # logsumexp: fp32 (B, nh, T), the softmax normaliser
        ctx.save_for_backward(q, k, v, out, logsumexp)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        q, k, v, out, logsumexp = ctx.saved_tensors
        dq, dk, dv = _CPU_BACKWARD(grad_out.float(), q.float(), k.float(), v.float(), out.float(), logsumexp,
                                   0.0, True)
        return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)


@functools.lru_cache(maxsize=1)
def _kernel_halves_work() -> bool:
    """The private ops exist *and* take the arguments used here (their signatures are not a public promise):
    one tiny causal call through this path must match the public kernel, or the public kernel is used."""
    if _CPU_FORWARD is None or _CPU_BACKWARD is None:
        return False
    try:
        generator = torch.Generator().manual_seed(0)
        q, k, v = (torch.randn(1, 1, 4, 8, generator=generator).bfloat16().requires_grad_() for _ in range(3))
        with torch.autocast("cpu", enabled=False):
            ours = _CausalFlashBf16ForwardFp32Backward.apply(q, k, v)
            ours.float().sum().backward()
        reference = F.scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), is_causal=True)
        return ours.shape == reference.shape and bool(torch.equal(ours.detach(), reference)) and q.grad is not None
    except (RuntimeError, TypeError, ValueError):
        return False


def _use_fp32_backward(q, k, v, mask, dropout: float, is_causal: bool) -> bool:
    return (_CPU_FORWARD is not None and _CPU_BACKWARD is not None and is_causal and mask is None
            and not dropout and q.device.type == "cpu" and q.dtype == torch.bfloat16
            and k.dtype == v.dtype == q.dtype and q.size(-2) == k.size(-2) and torch.is_grad_enabled()
            and (q.requires_grad or k.requires_grad or v.requires_grad) and _kernel_halves_work())


def fused_attention(q, k, v, mask: torch.Tensor | None = None, dropout: float = 0.0, is_causal: bool = False):
    """scaled_dot_product_attention(q, k, v, mask, dropout, is_causal); q/k/v (B, nh, T, hs) → (B, nh, T, hs)."""
    if _use_fp32_backward(q, k, v, mask, dropout, is_causal):
        with torch.autocast("cpu", enabled=False):   # the ops run in the dtype they are given
            return _CausalFlashBf16ForwardFp32Backward.apply(q, k, v)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, is_causal=is_causal)
