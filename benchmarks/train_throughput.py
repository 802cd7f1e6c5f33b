"""Training throughput: tokens/s and MFU of one optimizer step, gptscratch vs peer implementations.

    python benchmarks/train_throughput.py [--sizes mini,small] [--vocab 320] [--batch 8] [--rounds 5]

Every implementation trains the *same* shape (layers, width, heads, context, vocabulary, no dropout, tied
embeddings) with the *same* step: forward, cross-entropy, backward, clip 1.0, fused AdamW. Only the model code
differs. Peers, when importable in this environment:
  - Hugging Face transformers GPT2LMHeadModel (SDPA attention),
  - the `llms-from-scratch` package (Raschka): GPTModel (written-out attention) and GPTModelFast (SDPA).
gptscratch runs in fp32 and bf16 autocast, and its row marked "(auto)" is the precision `train --precision auto`
picks for that size on this machine (timed on a proxy of the model the first time: gptscratch/accel/precision.py);
peers in fp32 and bf16 autocast.

Timing: implementations are interleaved round by round (so load drifts hit all of them alike); each round
times `--steps` steps after warm-up; the median over rounds is reported. MFU = achieved FLOP/s ÷ peak, with
FLOPs per token from gptscratch/training/estimate.py (6N + 12·L·d·T) and, on CPU, the peak *measured* as a
large matmul in the same precision (a data-sheet peak means little on a shared virtual machine).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def build_gptscratch(c):
    from gptscratch.model import GPT

    model = GPT(c)
    return model, lambda x, y: model(x, y)[1]


def build_hf(c):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(vocab_size=c.vocab_size, n_positions=c.context_length, n_embd=c.d_model, n_layer=c.n_layer,
                        n_head=c.n_head, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True)
    try:
        model = GPT2LMHeadModel(config, attn_implementation="sdpa")
    except TypeError:
        model = GPT2LMHeadModel(config)

    def loss(x, y):
        logits = model(input_ids=x).logits
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
    return model, loss


def build_lfs(c, fast: bool):
    from llms_from_scratch.ch04 import GPTModel, GPTModelFast

    cfg = {"vocab_size": c.vocab_size, "context_length": c.context_length, "emb_dim": c.d_model, "n_heads": c.n_head,
           "n_layers": c.n_layer, "drop_rate": 0.0, "qkv_bias": True}
    model = (GPTModelFast if fast else GPTModel)(cfg)
    model.out_head.weight = model.tok_emb.weight  # tie, like the others (same parameter count)

    def loss(x, y):
        logits = model(x)
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1))
    return model, loss


def implementations(include_peers: bool):
    impls = {"gptscratch": build_gptscratch}
    if include_peers:
        try:
            import transformers  # noqa: F401
            impls["hf-gpt2"] = build_hf
        except ImportError:
            print("# transformers not installed: Hugging Face peer skipped", file=sys.stderr)
        try:
            import llms_from_scratch.ch04  # noqa: F401
            impls["lfs-GPTModel"] = lambda c: build_lfs(c, fast=False)
            impls["lfs-GPTModelFast"] = lambda c: build_lfs(c, fast=True)
        except ImportError:
            print("# llms-from-scratch not importable: its peers skipped "
                  "(pip install llms-from-scratch --no-deps; it needs only torch at runtime)", file=sys.stderr)
    return impls


class Runner:
    """One implementation at one precision, ready to time optimizer steps."""

    def __init__(self, build, config, precision: str, batch: int, device: str):
        torch.manual_seed(0)
        self.model, self.loss_fn = build(config)
        self.model.to(device).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, fused=device in ("cpu", "cuda"))
        self.precision, self.device = precision, device
        self.x = torch.randint(0, config.vocab_size, (batch, config.context_length), device=device)
        self.y = torch.roll(self.x, -1, dims=1)
        self.params = sum(p.numel() for p in self.model.parameters())

    def step(self) -> None:
        from gptscratch.training.precision import autocast

        with autocast(self.precision, self.device):
            loss = self.loss_fn(self.x, self.y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def time_steps(self, steps: int) -> float:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start


def matmul_peak(precision: str, device: str, n: int = 1024, repeats: int = 10) -> float:
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def main() -> None:
    from gptscratch.model import model_config
    from gptscratch.training.estimate import flops_per_token, peak_flops
    from gptscratch.training.precision import resolve_precision

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="mini,small")
    parser.add_argument("--vocab", type=int, default=320, help="vocabulary (320 = byte-level padded; 50304 = GPT-2)")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--context", type=int, default=None, help="override the sizes' context length")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-peers", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's); use 1 on an oversubscribed machine")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device
    auto = "bf16"   # every implementation is timed in fp32 and in bf16 autocast; the (auto) row is what `train` picks
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    print(json.dumps({"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "precisions": ["fp32", auto], "load_average_at_start": load}), flush=True)
    peaks = {p: peak_flops(device, p) or matmul_peak(p, device) for p in {"fp32", auto}}
    impls = implementations(not args.no_peers)
    for size in args.sizes.split(","):
        overrides = {"dropout": 0.0, **({"context_length": args.context} if args.context else {})}
        config = model_config(size, args.vocab, **overrides)
        runners = {}
        picked = resolve_precision("auto", device, config, args.batch)  # what `train` measures and uses here
        for name, build in impls.items():
            precisions = ["fp32", auto]
            for precision in precisions:
                label = f"{name} {precision}" + (" (auto)" if name == "gptscratch" and precision == picked else "")
                runners[label] = Runner(build, config, precision, args.batch, device)
        for runner in runners.values():  # warm-up: allocator, autocast caches, AdamW state
            runner.time_steps(2)
        times = {label: [] for label in runners}
        for _ in range(args.rounds):
            for label, runner in runners.items():
                times[label].append(runner.time_steps(args.steps))
        tokens = args.batch * config.context_length * args.steps
        fpt = flops_per_token(config, next(iter(runners.values())).params)
        rows = []
        for label, runner in runners.items():
            rate = tokens / statistics.median(times[label])
            rows.append({"size": size, "impl": label, "params": runner.params, "tokens_per_s": round(rate),
                         "mfu": round(rate * fpt / peaks[runner.precision], 3)})
        best_peer_fp32 = max((r["tokens_per_s"] for r in rows if not r["impl"].startswith("gptscratch")
                              and r["impl"].endswith("fp32")), default=None)
        for r in rows:
            if best_peer_fp32:
                r["vs_fastest_peer_fp32"] = round(r["tokens_per_s"] / best_peer_fp32, 2)
            print(json.dumps(r), flush=True)
    print(json.dumps({"peak_flops_measured": {k: round(v / 1e9, 1) for k, v in peaks.items()}, "unit": "GFLOP/s",
                      "load_average_at_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}), flush=True)


if __name__ == "__main__":
    main()
