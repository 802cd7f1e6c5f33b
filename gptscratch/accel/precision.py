""""auto" precision on CPU, decided by timing both on this machine.

bf16 halves the bytes of every weight and activation; whether that makes things faster depends on the processor
and on the operation, in both directions (measured on three 2-core machines, docs/benchmarks.md): decoding,
which streams the weights, gains up to 2.5× even without native bf16 instructions, while training, which is
compute-bound and converts every operand, ranges from 2× faster to 25× slower. So each is timed on a *proxy*
of the model — the same width, heads, context, vocabulary and block design, at most two layers (the per-layer
cost ratio is what matters) — in fp32 and in bf16, and bf16 is chosen when it is at least MARGIN faster:

    training_precision(config, batch_size)   one forward + backward (autocast bf16 vs fp32), batch capped at
                                             TRAIN_TOKENS tokens, with the attention kernel bf16 would use
    decoding_dtype(config)                   one-row cached decoding steps with bf16 vs fp32 weights, each with
                                             its fastest product (decoding.py)

Each answer is remembered per machine and shape (measure.py), so the cost — about a second, once — is paid only
the first time a shape is trained or decoded on a machine.
"""

from __future__ import annotations

import dataclasses
import json

import torch

from ..model import kernels
from . import attention, decoding, enabled
from .measure import measured, time_candidates


def auto_precision(device: str, measure_on_cpu) -> str:
    """What "auto" means on `device`: bf16 on a CUDA GPU that supports it; on CPU, `measure_on_cpu()` (the timing
    below) when accel is on — None for measure_on_cpu means there is no model shape to time; fp32 otherwise."""
    if device.startswith("cuda"):
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device == "cpu" and measure_on_cpu is not None and enabled():
        return measure_on_cpu()
    return "fp32"


MARGIN = 0.9            # bf16 must take at most 90% of fp32's time: its rounding is not free
TRAIN_TOKENS = 2048     # tokens per timed training step (B·T), so a large model's proxy stays small


def _proxy(config):
    """The model shape timed in place of `config`: the same design, at most two layers, no dropout."""
    return dataclasses.replace(config, n_layer=min(config.n_layer, 2), dropout=0.0)


def _shape(config, **extra) -> str:
    fields = {k: v for k, v in dataclasses.asdict(_proxy(config)).items() if k != "n_layer"}
    return json.dumps({**fields, **extra}, sort_keys=True)


def training_kernels(config, batch_size: int, precision: str, device: str) -> kernels.Kernels | None:
    """The kernel table to train with (None: PyTorch's own): the fp32-backward attention where bf16 training on
    this CPU is faster with it."""
    if precision != "bf16" or device != "cpu":
        return None
    best = attention.training_attention(batch_size, config.n_head, config.context_length, config.head_dim)
    return kernels.DEFAULT.replace(attention=attention.fp32_backward_attention, name="bf16 training") \
        if best == "fp32-backward" else None


def training_precision(config, batch_size: int) -> str:
    """"bf16" or "fp32": the faster training step for this model shape on this CPU."""
    batch = max(1, min(batch_size, TRAIN_TOKENS // config.context_length))

    def measure() -> dict:
        from ..model import GPT

        torch.manual_seed(0)
        model = GPT(_proxy(config))
        ids = torch.randint(0, config.vocab_size, (batch, config.context_length))

        def step(precision: str):
            table = training_kernels(config, batch, precision, "cpu") or kernels.DEFAULT

            def run():
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"), kernels.use(table):
                    _, loss = model(ids, ids)
                loss.backward()
                model.zero_grad(set_to_none=True)
            return run
        seconds = time_candidates({"fp32": step("fp32"), "bf16": step("bf16")}, budget=2.0, max_rounds=5)
        return {"best": "bf16" if seconds["bf16"] < MARGIN * seconds["fp32"] else "fp32", "seconds": seconds}

    return measured("cpu", f"train precision batch {batch} {_shape(config)}", measure)["best"]


def decoding_dtype(config) -> str:
    """"bf16" or "fp32": the faster weight dtype for one-row cached decoding of this model shape on this CPU."""
    def measure() -> dict:
        from ..model import GPT


        def decoder(dtype):
            torch.manual_seed(0)
            model = GPT(_proxy(config)).to(dtype).eval()
            table = decoding.decoding_kernels(model) or kernels.DEFAULT
            cache = model.new_kv_cache(batch=1)
            token = torch.zeros(1, 1, dtype=torch.long)

            def step():
                if cache.length >= cache.max_len:
                    cache.reset()
                with torch.inference_mode(), kernels.use(table):
                    model(token, kv_cache=cache)
            return step
        seconds = time_candidates({"fp32": decoder(torch.float32), "bf16": decoder(torch.bfloat16)}, budget=1.0,
                                  max_rounds=20)
        return {"best": "bf16" if seconds["bf16"] < MARGIN * seconds["fp32"] else "fp32", "seconds": seconds}

    return measured("cpu", f"decode dtype {_shape(config)}", measure)["best"]
