"""Batch-1 greedy decoding on a GPT-2-124M-shaped model with random weights: ours vs Hugging Face generate().

The same weights run in both: our GPT is built first and its state dict mapped into a GPT2LMHeadModel (Conv1D
weights are [in, out], so Linear weights are transposed; the LM head is tied in both). Logits are checked to
agree before timing. Runs are interleaved (HF, ours fp32, ours bf16, HF, ...) so machine noise hits every side
alike, and medians are reported.

Batch-1 decoding reads every weight once per token, so it is bound by memory bandwidth:
    effective GB/s = weight bytes read per token × tokens/s
(the position table is not counted: one row of it is read per token). The machine's bandwidth is measured with
a plain tensor copy (bytes read + bytes written per second) for comparison.

    python benchmarks/generation_vs_hf.py [--new-tokens 128] [--repeats 3] [--threads N]
        [--clock process] [--no-accel-too] [--device cuda]

On CUDA (`--device cuda`) HF also runs in bf16, the clock stops only after the GPU has finished, and the
bandwidth line is the device's own copy rate. A GPU decoding one row is usually bound by per-token kernel
launches and Python work rather than by bandwidth, so there the figures compare per-token overhead.

`--no-accel-too` adds "ours fp32/bf16 no-accel": the same generation with gptscratch.accel switched off
(GPTSCRATCH_ACCEL=0: PyTorch's default kernels for every step), to measure what the measured one-row products buy
on this machine. The line "--dtype auto picks ..." says which of the two dtypes `generate --dtype auto` uses here
(gptscratch/accel/precision.py times both on a proxy of this model the first time); that row is marked.

`--clock process` times with the process's CPU time instead of the wall clock: on a machine shared with other
work, a single-threaded run (--threads 1) then measures the work done rather than the time spent waiting for a
core (with several threads it would count busy-waiting threads too, so it needs --threads 1).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from gptscratch.model import GPT, model_config  # noqa: E402

CONV1D = ("attn.qkv", "attn.proj", "mlp.up", "mlp.down")
RENAME = {"attn.qkv": "attn.c_attn", "attn.proj": "attn.c_proj", "mlp.up": "mlp.c_fc", "mlp.down": "mlp.c_proj",
          "ln_1": "ln_1", "ln_2": "ln_2"}


def to_hf(ours: GPT):
    """A GPT2LMHeadModel holding exactly our weights."""
    from transformers import GPT2Config, GPT2LMHeadModel

    c = ours.config
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=c.vocab_size, n_positions=c.context_length, n_embd=c.d_model,
                                    n_layer=c.n_layer, n_head=c.n_head, activation_function="gelu_new",
                                    resid_pdrop=0, embd_pdrop=0, attn_pdrop=0)).eval()
    target = hf.state_dict()
    with torch.no_grad():
        for name, tensor in ours.state_dict().items():
            if name == "lm_head.weight":
                continue  # tied to the token embedding in both models
            if name.startswith("blocks."):
                layer, rest = name.split(".")[1], ".".join(name.split(".")[2:])
                module, kind = rest.rsplit(".", 1)
                hf_name = f"transformer.h.{layer}.{RENAME[module]}.{kind}"
                value = tensor.t() if module in CONV1D and kind == "weight" else tensor
            else:
                hf_name = {"tok_embed.weight": "transformer.wte.weight",
                           "pos_embed.table.weight": "transformer.wpe.weight",
                           "ln_f.weight": "transformer.ln_f.weight", "ln_f.bias": "transformer.ln_f.bias"}[name]
                value = tensor
            target[hf_name].copy_(value)
    return hf


def copy_bandwidth(megabytes: int = 512, repeats: int = 7) -> float:
    """GB/s of a large tensor copy, counting bytes read plus bytes written."""
    source = torch.empty(megabytes * 2**20 // 4, device=DEVICE)
    dest = torch.empty_like(source)
    dest.copy_(source)
    times = []
    for _ in range(repeats):
        sync()
        started = time.perf_counter()
        dest.copy_(source)
        sync()
        times.append(time.perf_counter() - started)
    return 2 * source.numel() * 4 / statistics.median(times) / 1e9


CLOCK = time.perf_counter
DEVICE = "cpu"


def sync() -> None:
    """Wait for the GPU (kernels are asynchronous: a clock read before they finish measures nothing)."""
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def hf_generate_seconds(hf, prompt: list[int], new_tokens: int) -> tuple[float, list[int]]:
    ids = torch.tensor([prompt], device=DEVICE)
    sync()
    started = CLOCK()
    with torch.inference_mode():
        out = hf.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                          use_cache=True, pad_token_id=0)
    sync()
    return CLOCK() - started, out[0, len(prompt):].tolist()


def ours_seconds(model, prompt: list[int], new_tokens: int) -> tuple[float, list[int]]:
    from gptscratch.generation import SamplingConfig, generate_batch

    sync()
    started = CLOCK()
    tokens = generate_batch(model, [prompt], new_tokens, SamplingConfig(temperature=0))[0]
    sync()
    return CLOCK() - started, tokens


def ours_plain_seconds(model, prompt: list[int], new_tokens: int) -> tuple[float, list[int]]:
    """Ours with gptscratch.accel switched off (GPTSCRATCH_ACCEL=0): PyTorch's default kernels for every step."""
    from gptscratch.accel import ENV_ACCEL

    previous = os.environ.get(ENV_ACCEL)
    os.environ[ENV_ACCEL] = "0"
    try:
        return ours_seconds(model, prompt, new_tokens)
    finally:
        os.environ.pop(ENV_ACCEL) if previous is None else os.environ.__setitem__(ENV_ACCEL, previous)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompt-tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--clock", choices=("wall", "process"), default="wall")
    parser.add_argument("--no-accel-too", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    global DEVICE
    DEVICE = args.device
    if args.clock == "process":
        if args.threads != 1:
            parser.error("--clock process needs --threads 1 (other threads' busy-waiting would be counted)")
        global CLOCK
        CLOCK = time.process_time
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    ours = GPT(model_config("gpt2", vocab_size=50257)).eval()
    hf = to_hf(ours).to(DEVICE)
    bf16 = GPT(ours.config).eval()
    bf16.load_state_dict(ours.state_dict())
    bf16.to(DEVICE, torch.bfloat16)
    ours.to(DEVICE)
    prompt = torch.randint(0, 50257, (args.prompt_tokens,), generator=torch.Generator().manual_seed(1)).tolist()
    with torch.inference_mode():
        ids = torch.tensor([prompt], device=DEVICE)
        ours_logits, hf_logits = ours(ids)[0], hf(ids).logits
    difference = (ours_logits - hf_logits).abs().max().item()
    print(f"{DEVICE}, threads {torch.get_num_threads()}, {args.clock} clock; max |logit difference| ours vs HF: {difference:.2e}")

    from gptscratch.generation.precision import resolve_inference_dtype

    auto = resolve_inference_dtype("auto", DEVICE, ours.config)   # what `generate --dtype auto` picks here
    print(f"--dtype auto picks {auto} on this machine")
    contenders = {"HF generate fp32": lambda: hf_generate_seconds(hf, prompt, args.new_tokens),
                  "ours fp32": lambda: ours_seconds(ours, prompt, args.new_tokens),
                  "ours bf16": lambda: ours_seconds(bf16, prompt, args.new_tokens)}
    if DEVICE.startswith("cuda"):
        hf_bf16 = to_hf(ours.cpu()).to(DEVICE, torch.bfloat16)
        ours.to(DEVICE)
        contenders["HF generate bf16"] = lambda: hf_generate_seconds(hf_bf16, prompt, args.new_tokens)
    if args.no_accel_too:
        contenders["ours fp32 no-accel"] = lambda: ours_plain_seconds(ours, prompt, args.new_tokens)
        contenders["ours bf16 no-accel"] = lambda: ours_plain_seconds(bf16, prompt, args.new_tokens)
    ours_seconds(ours, prompt, 4), ours_seconds(bf16, prompt, 4), hf_generate_seconds(hf, prompt, 4)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in contenders}
    outputs = {}
    for _ in range(args.repeats):
        for name, run in contenders.items():
            seconds, outputs[name] = run()
            times[name].append(seconds)
    bandwidth = copy_bandwidth()
    weights = {name: sum(p.numel() * p.element_size() for n, p in m.named_parameters() if "pos_embed" not in n)
               for name, m in (("fp32", ours), ("bf16", bf16))}
    hf_rate = args.new_tokens / statistics.median(times["HF generate fp32"])
    print(f"greedy, batch 1, prompt {args.prompt_tokens}, {args.new_tokens} new tokens, median of {args.repeats}")
    print(f"{'':20} {'tokens/s':>9} {'vs HF':>6} {'effective GB/s':>15}")
    for name, seconds in times.items():
        rate = args.new_tokens / statistics.median(seconds)
        gbs = rate * weights["bf16" if "bf16" in name else "fp32"] / 1e9
        picked = "   <- --dtype auto" if name == f"ours {auto}" else ""
        print(f"{name:20} {rate:9.1f} {rate / hf_rate:5.2f}x {gbs:15.1f}{picked}")
    print(f"memory bandwidth (tensor copy, read + write): {bandwidth:.1f} GB/s")
    same = outputs["ours fp32"] == outputs["HF generate fp32"]
    agree = sum(a == b for a, b in zip(outputs["ours fp32"], outputs["ours bf16"])) / args.new_tokens
    print(f"ours fp32 tokens == HF tokens: {same}; bf16 vs fp32 same-position agreement: {agree:.0%}")


if __name__ == "__main__":
    main()
