"""Batch-1 decoding on CPU: one row times every weight matrix, through the product this machine streams fastest.

Decoding one token of one sequence multiplies a (1, d) row by every weight matrix once, a handful of FLOPs per
weight read: it is bound by how fast a kernel *streams* the weights from memory. Which kernel does that fastest
depends on the machine, the dtype and the shapes (measured: on a Xeon with AMX, nn.Linear's bf16 path reads at
about half the speed of torch.mv; on an AVX2 EPYC the ranking differs), so the candidates are timed on the
model's own matrices the first time, and the winner is remembered (measure.py):

    "linear"        F.linear(x, W, b) on the weights as they are (W row-major, (out, in)) — PyTorch's default
    "mv"            torch.mv(W, x) + b: the matrix-vector kernel on the same weights
    "column-major"  addmm(b, x, Wᵀ) on a copy of W stored transposed — GPT-2's Conv1D layout — so the product
                    runs as y += x_i · W[:, i], the order some BLAS libraries stream fastest

`decoding_kernels(model)` returns the kernel table (gptscratch/model/kernels.py) whose `linear` uses the winner
for one-row inputs and F.linear for anything else; the engine runs the model's own forward with it, so the
block wiring is the same code as in training. A column-major copy doubles the weights' memory while a Decoder
lives, so none is made above COPY_BUDGET bytes; the copies belong to one Decoder (one generation call), so
they can never be stale after a training step changed the weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..model import kernels
from . import enabled
from .measure import measured, time_candidates

PRODUCTS = ("linear", "mv", "column-major")
COPY_BUDGET = 2 * 2**30     # bytes of weight matrices above which no column-major copy is made


def decoding_matrices(model) -> list[torch.Tensor]:
    """Every matrix a decoding step multiplies by: each Linear's weight (the output layer last)."""
    return [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]


def _row_product(name: str, weight: torch.Tensor, bias: torch.Tensor | None):
    """x (1, in) → x Wᵀ + b (1, out) through product `name`."""
    if name == "column-major":
        weight_t = weight.detach().t().contiguous()                            # (in, out)
        return (lambda x: torch.addmm(bias, x, weight_t)) if bias is not None else (lambda x: x.mm(weight_t))
    if name == "mv":
        if bias is None:
            return lambda x: torch.mv(weight, x.view(-1)).view(1, -1)
        return lambda x: torch.mv(weight, x.view(-1)).add_(bias).view(1, -1)
    return lambda x: F.linear(x, weight, bias)


def _question(model) -> str:
    c, dtype = model.config, str(decoding_matrices(model)[0].dtype).removeprefix("torch.")
    return f"decode product {dtype} d{c.d_model} L{c.n_layer} ff{c.hidden_dim} V{c.vocab_size}"


def best_product(model) -> str:
    """The fastest of PRODUCTS for this model's matrices on this machine (measured once, then remembered)."""
    matrices = decoding_matrices(model)

    def measure() -> dict:
        rows = {w.size(1): torch.randn(1, w.size(1), dtype=w.dtype) for w in matrices}
        names = [n for n in PRODUCTS if n != "column-major" or _nbytes(matrices) <= COPY_BUDGET]
        with torch.inference_mode():
            products = {name: [(_row_product(name, w, None), rows[w.size(1)]) for w in matrices] for name in names}
            seconds = time_candidates({name: (lambda p=p: [product(x) for product, x in p])
                                       for name, p in products.items()}, budget=0.5)
        return {"best": min(seconds, key=seconds.get), "seconds_per_token": seconds}

    return measured("cpu", _question(model), measure)["best"]


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def decoding_kernels(model, product: str | None = None) -> kernels.Kernels | None:
    """The kernel table for one-row cached decoding of `model` (None: PyTorch's defaults are what to use —
    accel is off, the model is not on the CPU, or F.linear is already the fastest product)."""
    matrices = decoding_matrices(model)
    if not enabled() or not matrices or matrices[0].device.type != "cpu":
        return None
    product = product or best_product(model)
    if product == "linear" or (product == "column-major" and _nbytes(matrices) > COPY_BUDGET):
        return None
    with torch.no_grad():
        prepared = {id(m.weight): (m.weight, _row_product(product, m.weight, m.bias))
                    for m in model.modules() if isinstance(m, torch.nn.Linear)}

    def linear(x, weight, bias=None):
        entry = prepared.get(id(weight))
        if entry is None or entry[0] is not weight or x.numel() != x.size(-1):     # not one row: the default
            return F.linear(x, weight, bias)
        return entry[1](x.reshape(1, -1)).view(*x.shape[:-1], -1)

    return kernels.DEFAULT.replace(linear=linear, name=f"decode ({product})")
