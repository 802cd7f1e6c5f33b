"""One row times a bf16 matrix through MKL's bf16 GEMM, the fastest batch-1 bf16 product measured on CPU.

    y (1, out) = x (1, in) · Wᵀ + b        x, W in bf16; products summed in fp32; y rounded once to bf16

Why MKL: batch-1 decoding reads every weight once per token, so the product's speed is the speed at which its
kernel streams W. On an AMX Xeon (2 threads, GPT-2-124M's 49 matrices, 247 MB of bf16 per token), every
bf16 kernel PyTorch itself exposes streams at ≈ 20–21 GB/s — oneDNN with W pre-packed for batch 1
(`torch.ops.mkldnn._linear_pointwise`), `torch.mv`, nn.Linear (≈ 12), the native non-oneDNN kernels (≈ 11),
Inductor's generated reduction (≈ 14) — while MKL's fp32 gemv reaches ≈ 30. MKL's
`cblas_gemm_bf16bf16f32` on W stored column-major — `Wᵀ` contiguous (in, out), GPT-2's Conv1D layout — streams
bf16 at ≈ 24–25 GB/s (row-major W: ≈ 22). PyTorch links MKL statically and exports that symbol from
libtorch_cpu, but no operator reaches it for bf16 (`mm(out_dtype=)` is CUDA-only), so it is called here
through ctypes on the tensors' memory: no build step, no new dependency.

Safety: the C function trusts the pointers and sizes it is given, so `RowTimesMatrix` owns the shapes: it
checks the input's dtype, contiguity and length on every call (a few hundred ns), and `gemm()` checks once per
process, on a small odd-shaped product, that the symbol computes what torch computes (the integer width of the
interface, LP64, included) — anything unexpected and callers fall back to the oneDNN or `torch.mv` paths.
"""

from __future__ import annotations

import ctypes
import functools
import os

import torch

_ROW_MAJOR, _NO_TRANS = 101, 111          # CBLAS_LAYOUT / CBLAS_TRANSPOSE values


@functools.lru_cache(maxsize=1)
def gemm():
    """MKL's cblas_gemm_bf16bf16f32 bound through ctypes, or None where this torch build has no usable one."""
    if not torch.backends.mkl.is_available():
        return None
    directory = os.path.join(os.path.dirname(torch.__file__), "lib")
    paths = [os.path.join(directory, n) for n in ("libtorch_cpu.so", "libtorch_cpu.dylib", "torch_cpu.dll")]
    path = next((p for p in paths if os.path.exists(p)), None)
    try:
        function = ctypes.CDLL(path).cblas_gemm_bf16bf16f32 if path else None
    except (OSError, AttributeError):
        return None
    if function is None:
        return None
    i, f, p = ctypes.c_int, ctypes.c_float, ctypes.c_void_p
    function.restype = None
    #                   layout transa transb m  n  k  alpha a  lda b  ldb beta c  ldc
    function.argtypes = [i, i, i, i, i, i, f, p, i, p, i, f, p, i]
    return function if _computes_correctly(function) else None


def _computes_correctly(function) -> bool:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, 37, generator=generator).bfloat16()
    weight_t = torch.randn(37, 23, generator=generator).bfloat16()
    out = torch.full((1, 23), 0.5)                                       # beta = 1 adds it, as a bias
    function(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, 1, 23, 37, 1.0, x.data_ptr(), 37, weight_t.data_ptr(), 23, 1.0,
             out.data_ptr(), 23)
    expected = x.float() @ weight_t.float() + 0.5
    return bool(torch.allclose(out, expected, atol=1e-4, rtol=1e-4))


class RowTimesMatrix:
    """Callable x (1, in) bf16 → x · weight_t + bias (1, out) bf16, for weight_t a contiguous bf16 (in, out)."""

    def __init__(self, weight_t: torch.Tensor, bias: torch.Tensor | None):
        if weight_t.dtype != torch.bfloat16 or weight_t.dim() != 2 or not weight_t.is_contiguous():
            raise ValueError("RowTimesMatrix needs a contiguous 2-D bf16 (in, out) matrix")
        self.function = gemm()
        if self.function is None:
            raise RuntimeError("MKL's bf16 GEMM is not available in this torch build")
        self.weight_t, (self.fan_in, self.fan_out) = weight_t, weight_t.shape
        # The bias is summed in fp32 with the products (beta = 1 on an output pre-filled with it), then the
        # sum is rounded to bf16 once: what oneDNN's fused bias and F.linear compute.
        self.bias = bias.detach().float().reshape(1, -1) if bias is not None else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype != torch.bfloat16 or x.numel() != self.fan_in or not x.is_contiguous():
            raise ValueError(f"expected a contiguous bf16 row of {self.fan_in} values, got {tuple(x.shape)} "
                             f"{x.dtype}")
        # A fresh output each call (not a reused scratch): no in-place op that inference mode could refuse.
        out = self.bias.clone() if self.bias is not None else torch.empty(1, self.fan_out)
        self.function(_ROW_MAJOR, _NO_TRANS, _NO_TRANS, 1, self.fan_out, self.fan_in, 1.0, x.data_ptr(),
                      self.fan_in, self.weight_t.data_ptr(), self.fan_out, 1.0 if self.bias is not None else 0.0,
                      out.data_ptr(), self.fan_out)
        return out.to(torch.bfloat16)
