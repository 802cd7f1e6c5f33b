"""Engine-only fast path: one cached decoding step for a single row, as a flat sequence of tensor operations.

Batch-1 decoding with a KV cache is bound by reading the weights: each step multiplies every weight matrix
W (out, in) by one vector, ≈ 2 bytes (bf16) or 4 bytes (fp32) read per multiply-add. What the module path
adds on top is per-token overhead that reads no weights: ~25 module calls per block (Linear, LayerNorm,
dropout, a dozen identity HookPoints), views and transposes of (1, 1, d) tensors, a general matrix-matrix
product for a one-row input: ≈ 1 ms per token on a 12-block model (measured with tiny matrices, 2 threads:
1.90 → 0.94 ms per token fp32, 3.47 → 1.89 bf16). This file runs the *same maths* as gptscratch/model (the model
files stay the readable reference) for one row, directly on the model's own parameter tensors; vectors are kept
as (1, d) rows so no step needs a view:

    x = E[token] (· √d) (+ P[position])                                        (1, d)
    per block (pre-norm):   h = LN₁(x)
        q, k, v = W_qkv h + b                                one matrix-vector product  (1, 3d) → (1, nh, 1, hs) ×3
        (rope: rotate q, k by the position's angles, computed once per step)
        cache[L] ← k, v;  a = SDPA(q, cache[:L+1])               the new query sees every cached key: no mask
        sequential: x += W_o a + b;  x += W₂ act(W₁ LN₂(x) + b₁) + b₂
        parallel:   x += (W_o a + b) + W₂ act(W₁ h + b₁) + b₂
    logits = W_out LN_f(x) (+ b)                                                (1, V)

Weight layout (CPU): the layout of W decides how fast one row times W streams it (nn.Linear's bf16 path reads at
about half the speed of `torch.mv`), so the engine keeps a decoding copy of
every matrix, built once per model (≈ 0.3 s for GPT-2-124M) and rebuilt when a weight changes (in-place optimizer
steps bump the tensor's version). Measured on GPT-2-124M's matrices, 2 threads:
    fp32  nn.Linear stores W row-major (out, in): W x is a dot product per row. MKL's gemv streams a column-major
          W — y += x_i · W[:, i], the layout of GPT-2's Conv1D — faster: 20.7 → 18.9 ms per decoded token
          (one thread: blocks 6–7%, the 50257 × 768 output layer 13%). Copy: `W.t().contiguous().t()`, same
          shape and values, other strides; the product is `addmm(b, x, copy.t())` (x (1, in) times a contiguous
          (in, out)), 2–5% faster than `addmv` on the same copy. Without a copy: F.linear (fp32 is as fast
          there as torch.mv), or torch.mv for bf16.
    bf16  BF16_KERNELS, fastest first (all 49 products of a token, 247 MB, GB/s median of interleaved runs):
          "mkl"     the same column-major copy, multiplied by MKL's bf16 GEMM (mkl_bf16.py): 22.5–24.7 GB/s; a
                    whole decoding step 13.0 → 11.9 ms; used on CPUs with native bf16 (avx512_bf16 / AMX) only;
          "onednn"  W pre-packed for batch 1 (torch.ops.mkldnn._reorder_linear_weight / _linear_pointwise, the
                    pair torch.compile's CPU backend uses): 20.3–21.7 GB/s (packed for a batch of 4–64: no
                    faster; 16 real rows, so AMX tiles fill: 15);
          "mv"      torch.mv on the plain weights: 19.7–20.5 GB/s (column-major: 8; oneDNN off: 11).
          `BF16_KERNEL` picks one ("auto": the first available) to compare them.
A copy doubles the weights' memory while a model is used for generation, so none is made above COPY_BUDGET bytes.

`supports(model)` says when the fast path applies (pre-norm models in eval mode; post-norm blocks take the module
path); the Decoder also falls back to the module path whenever a hook is registered on any HookPoint, so
interpretability tools see every activation. tests/test_generation_fast_decode.py checks the fast path's logits
against the module path's at every step for each supported variant.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from gptscratch.generation import mkl_bf16
from gptscratch.model.embeddings import LearnedPositions, SinusoidalPositions
from gptscratch.model.hooks import HookPoint

ACTIVATIONS = {
    "gelu": lambda h: F.gelu(h),
    "gelu_tanh": lambda h: F.gelu(h, approximate="tanh"),
    "relu": lambda h: torch.relu_(h),
}


COPY_BUDGET = 2 * 2**30   # bytes of decoding matrices above which no layout copy is made
BF16_KERNELS = ("mkl", "onednn", "mv")   # bf16 products on CPU, fastest first (module docstring)
BF16_KERNEL = "auto"                     # one of BF16_KERNELS to force it where available; "auto": the fastest
_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # model → (fingerprint, [copies])


def _decoding_matrices(model) -> list[torch.Tensor]:
    """Every matrix a decoding step multiplies by, in a fixed order (the output layer last)."""
    matrices = []
    for block in model.blocks:
        matrices += [block.attn.qkv.weight, block.attn.proj.weight]
        if block.mlp is not None:
            matrices += [block.mlp.up.weight, block.mlp.down.weight]
    return matrices + [model.lm_head.weight]


def _version(tensor: torch.Tensor) -> int:
    """The in-place modification counter (-1 for inference tensors, which have none)."""
    try:
        return tensor._version
    except RuntimeError:
        return -1


def _packs_bf16() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_reorder_linear_weight")


def _has_mkl_bf16() -> bool:
    from gptscratch.training.precision import cpu_has_native_bf16

    return cpu_has_native_bf16() and mkl_bf16.gemm() is not None     # measured only with native bf16


def bf16_kernel() -> str:
    """The bf16 product used on CPU: BF16_KERNEL when available there, else the fastest available."""
    available = {"mkl": _has_mkl_bf16, "onednn": _packs_bf16, "mv": lambda: True}
    if BF16_KERNEL != "auto" and available[BF16_KERNEL]():
        return BF16_KERNEL
    return next(name for name in BF16_KERNELS if available[name]())


def _layout_copy(weight: torch.Tensor, kernel: str | None) -> torch.Tensor:
    if kernel == "onednn":
        return torch.ops.mkldnn._reorder_linear_weight(weight.contiguous(), 1)   # oneDNN's layout for batch 1
    return weight.t().contiguous().t()                             # column-major, same shape and values


def _decoding_copies(model) -> dict[int, torch.Tensor]:
    """id(weight) → its decoding-layout copy (cached per model): column-major for fp32 on CPU; for bf16 on CPU,
    column-major ("mkl") or oneDNN-packed ("onednn"); {} elsewhere, over COPY_BUDGET, or for "mv"."""
    matrices = _decoding_matrices(model)
    first = matrices[0]
    size = sum(w.numel() * w.element_size() for w in matrices)
    kernel = bf16_kernel() if first.dtype == torch.bfloat16 else None
    wanted = first.dtype == torch.float32 or kernel in ("mkl", "onednn")
    if first.device.type != "cpu" or not wanted or size > COPY_BUDGET:
        return {}
    fingerprint = (kernel,) + tuple((w.data_ptr(), _version(w)) for w in matrices)
    cached = _COPIES.get(model)
    if cached is None or cached[0] != fingerprint:
        try:
            with torch.no_grad():
                cached = (fingerprint, [_layout_copy(w.detach(), kernel) for w in matrices])
        except RuntimeError:        # a oneDNN build that cannot pack this shape: plain weights work everywhere
            return {}
        _COPIES[model] = cached
    return {id(w): copy for w, copy in zip(matrices, cached[1])}


def supports(model) -> bool:
    """Whether `FastDecoder.step` computes what `model.forward` would for a one-row cached step."""
    return model.config.norm_placement == "pre" and not model.training


def _row_linear(module, copies: dict[int, torch.Tensor]):
    """x (1, in) → x Wᵀ + b (1, out) for one nn.Linear, through the fastest batch-1 kernel measured here."""
    weight, bias = module.weight, module.bias
    copy = copies.get(id(weight))
    if copy is not None and copy.is_mkldnn:                      # oneDNN-packed bf16, bias fused
        return lambda x: torch.ops.mkldnn._linear_pointwise(x, copy, bias, "none", [], "")
    if copy is not None and copy.dtype == torch.bfloat16:        # bf16 column-major: MKL's bf16 GEMM
        return mkl_bf16.RowTimesMatrix(copy.t(), bias)
    if copy is not None:                                         # fp32 column-major: copy.t() is (in, out)
        weight_t = copy.t()
        return (lambda x: torch.addmm(bias, x, weight_t)) if bias is not None else (lambda x: x.mm(weight_t))
    if weight.dtype == torch.float32 or weight.device.type != "cpu":
        return lambda x: F.linear(x, weight, bias)
    # bf16 on CPU without oneDNN packing: the gemv kernel (bf16 addmv costs ~10% more than mv + add_).
    if bias is None:
        return lambda x: torch.mv(weight, x.view(-1)).view(1, -1)
    return lambda x: torch.mv(weight, x.view(-1)).add_(bias).view(1, -1)


class LayerWeights(NamedTuple):
    """One block's tensors and products, gathered once per Decoder (nn.Module attribute look-ups are slow)."""
    ln_1: tuple                 # (weight, bias or None)
    qkv: Callable               # (1, d) → (1, 3d), see _row_linear
    proj: Callable
    ln_2: tuple | None          # None: parallel or attention-only block
    up: Callable | None         # None: attention-only block
    down: Callable | None


class FastDecoder:
    """One-row cached decoding for `model`: `step(token, cache)` → logits (1, V), the cache advanced by one."""

    def __init__(self, model):
        self.model, config = model, model.config
        self.hook_points = [m for m in model.modules() if isinstance(m, HookPoint)]
        self.d_model, self.n_head, self.head_dim = config.d_model, config.n_head, config.head_dim
        self.eps = config.layer_norm_eps
        self.activation = ACTIVATIONS[config.activation]
        self.embed_scale = math.sqrt(config.d_model) if config.scale_embeddings else None
        self.pos_table = model.pos_embed.table.weight if isinstance(model.pos_embed, LearnedPositions) else None
        self.sinusoidal = model.pos_embed if isinstance(model.pos_embed, SinusoidalPositions) else None
        rotary = model.blocks[0].attn.rotary
        self.rotary_half = rotary.rotary_dims // 2 if rotary is not None else 0
        self.inv_freq = rotary.inv_freq if rotary is not None else None
        copies = _decoding_copies(model)

        def linear(module):
            return _row_linear(module, copies)

        def norm(module):
            return module.weight, module.bias

        self.layers = [
            LayerWeights(norm(b.ln_1), linear(b.attn.qkv), linear(b.attn.proj),
                         norm(b.ln_2) if b.ln_2 is not None else None,
                         linear(b.mlp.up) if b.mlp is not None else None,
                         linear(b.mlp.down) if b.mlp is not None else None)
            for b in model.blocks]
        self.ln_f, self.lm_head = norm(model.ln_f), linear(model.lm_head)
        self.embedding = model.tok_embed.weight

    def hooked(self) -> bool:
        """True when someone is observing activations: then only the module path will do."""
        return any(h._forward_hooks or h._forward_pre_hooks for h in self.hook_points)

    def _rotate(self, t: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """RotaryEmbedding.forward for t (..., hs) at one position (rotate-half layout, partial rope)."""
        half = self.rotary_half
        x1, x2, rest = t[..., :half], t[..., half: 2 * half], t[..., 2 * half:]
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)

    def step(self, token: int, cache) -> torch.Tensor:
        """Feed `token` at position cache.length; return the next token's logits (1, V). Vectors stay (1, d)."""
        d, eps, activation = self.d_model, self.eps, self.activation
        position = cache.length
        x = self.embedding[token: token + 1]
        if self.embed_scale is not None:
            x = x * self.embed_scale
        if self.pos_table is not None:
            x = x + self.pos_table[position: position + 1]
        elif self.sinusoidal is not None:
            x = x + self.sinusoidal(torch.tensor([position], device=x.device)).to(x.dtype)
        rope = None
        if self.inv_freq is not None:
            angles = torch.tensor([position], device=x.device).float().unsqueeze(-1) * self.inv_freq  # (1, r/2)
            rope = angles.cos().to(x.dtype), angles.sin().to(x.dtype)

        heads = (3, 1, self.n_head, 1, self.head_dim)     # q, k, v each (B=1, nh, T=1, hs), as SDPA wants
        end = position + 1
        for layer, layer_cache in zip(self.layers, cache.layers):
            h = torch.layer_norm(x, (d,), *layer.ln_1, eps)
            q, k, v = layer.qkv(h).view(heads).unbind(0)
            if rope is not None:
                q, k = self._rotate(q, *rope), self._rotate(k, *rope)
            layer_cache.k.narrow(2, position, 1).copy_(k)
            layer_cache.v.narrow(2, position, 1).copy_(v)
            out = F.scaled_dot_product_attention(q, layer_cache.k.narrow(2, 0, end), layer_cache.v.narrow(2, 0, end))
            attn_out = layer.proj(out.view(1, d))
            if layer.up is None:                                  # attention-only block
                x = x + attn_out
            elif layer.ln_2 is None:                              # parallel: the MLP reads the same h
                x = x + attn_out + layer.down(activation(layer.up(h)))
            else:
                x = x + attn_out
                h = torch.layer_norm(x, (d,), *layer.ln_2, eps)
                x = x + layer.down(activation(layer.up(h)))
        cache.length = end
        return self.lm_head(torch.layer_norm(x, (d,), *self.ln_f, eps))
