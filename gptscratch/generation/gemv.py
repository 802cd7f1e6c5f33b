"""Engine-only speed trick: run batch-1 decoding's bf16 matrix products as matrix-vector products on CPU.

Decoding one token for one row multiplies every weight matrix W (out, in) by a single vector x (in,). nn.Linear
sends that through the general matrix-matrix path; for bf16 on CPU that path measured at about half the memory
bandwidth of `torch.mv`, the dedicated matrix-vector kernel (≈ 10–15 vs 20 GB/s on one core here; fp32 is the
same either way). Since batch-1 decoding is bound by reading the weights, that is most of the bf16 speed-up.

`matrix_vector_linears(linears)` temporarily gives each nn.Linear a forward that uses `torch.mv` when the input
holds exactly one row and F.linear otherwise, so the model file keeps its plain nn.Linear and nothing changes for
training, evaluation or hooks. The Decoder uses it only for bf16 models on CPU.
"""

from __future__ import annotations

from contextlib import contextmanager
from types import MethodType

import torch
import torch.nn.functional as F
from torch import nn


def _single_row_forward(self: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    if x.numel() != self.in_features:
        return F.linear(x, self.weight, self.bias)
    y = torch.mv(self.weight, x.reshape(-1))
    if self.bias is not None:
        y = y + self.bias
    return y.view(*x.shape[:-1], self.out_features)


def wants_matrix_vector(model) -> bool:
    weight = model.tok_embed.weight
    return weight.device.type == "cpu" and weight.dtype == torch.bfloat16


@contextmanager
def matrix_vector_linears(linears: list[nn.Linear]):
    for module in linears:
        module.forward = MethodType(_single_row_forward, module)
    try:
        yield
    finally:
        for module in linears:
            del module.forward
