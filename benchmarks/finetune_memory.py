"""Fine-tuning memory and speed: every weight (full) vs LoRA adapters (`train --lora-rank 8`), same model, same step.

    python benchmarks/finetune_memory.py                          # size gpt2 (124M), GPT-2's vocabulary, batch 1 × 256
    python benchmarks/finetune_memory.py --size small --batch 4 --steps 5 --warmup 2   # activations dominate here
    python benchmarks/finetune_memory.py --json                   # one JSON object instead of the table

Each variant trains in its own fresh process (Linux carries ru_maxrss over fork/exec, so the parent stays small):
build the GPT of `--size` with a `--vocab` output layer, for LoRA wrap qkv, proj, up and down of every block
(gptscratch/model/lora.py: rank `--rank`, α 16; everything else frozen), build the optimizer the trainer builds
(gptscratch/training/optimizer.py: fused AdamW over the parameters that require gradients), then run `--warmup` +
`--steps` optimizer steps on random tokens: forward, cross-entropy, backward, clip 1.0, step, zero grads — the
body of Trainer.train_step, in fp32. Reported per variant: trainable parameters, peak memory (CPU: the process's
peak RSS, ru_maxrss; CUDA: torch.cuda.max_memory_allocated), that peak minus a process that only imports torch and
builds the same model (what training adds on top of holding the weights), and tokens/s over the timed steps.
Variants run `--repeats` times, interleaved; the best tokens/s and the lowest peak are kept.

What LoRA saves is gradients and AdamW's two moments for the frozen weights (3 × 4 bytes per frozen parameter);
activations are kept in both (the adapters need the gradient flowing back through every frozen layer), so the
saving is largest when the weights, not the activations, dominate: large models, small batches.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {repo!r})
import torch
from gptscratch.model import GPT, model_config
from gptscratch.model.lora import apply_lora
from gptscratch.training.optimizer import build_optimizer

args = json.loads({args!r})
device = args["device"]
torch.manual_seed(0)
with torch.device(device):
    model = GPT(model_config(args["size"], args["vocab"], context_length=args["context"], dropout=0.0))
if args["variant"] == "lora":
    apply_lora(model, args["rank"], 16.0, 0.0, "qkv,proj,gate,up,down")
trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
total = sum(p.numel() for p in {{id(p): p for p in model.parameters()}}.values())
seconds = 0.0
if args["variant"] != "weights only":
    model.train()
    optimizer = build_optimizer(model, 1e-3, 0.1, (0.9, 0.95), device)
    shape = (args["batch"], args["context"])
    for step in range(args["warmup"] + args["steps"]):
        x = torch.randint(0, args["vocab"], shape, device=device)
        y = torch.randint(0, args["vocab"], shape, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if step >= args["warmup"]:
            seconds += time.perf_counter() - started
peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
tokens = args["batch"] * args["context"] * args["steps"]
print(json.dumps({{"variant": args["variant"], "trainable": trainable, "parameters": total, "peak_bytes": peak,
                  "tokens_per_s": tokens / seconds if seconds else None}}))
"""


def run_variant(variant: str, args) -> dict:
    settings = {"variant": variant, "size": args.size, "vocab": args.vocab, "context": args.context,
                "batch": args.batch, "rank": args.rank, "steps": args.steps, "warmup": args.warmup,
                "device": args.device}
    code = CHILD.format(repo=str(REPO), args=json.dumps(settings))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_name() -> str:
    from gptscratch.device import cpu_model

    return cpu_model()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="gpt2", help="gptscratch model size (tiny, mini, small, medium, gpt2)")
    parser.add_argument("--vocab", type=int, default=50304, help="vocabulary (default: GPT-2's, padded to 64)")
    parser.add_argument("--context", type=int, default=256)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rank", type=int, default=8, help="LoRA rank")
    parser.add_argument("--steps", type=int, default=3, help="timed optimizer steps")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (AdamW allocates its moments)")
    parser.add_argument("--repeats", type=int, default=2,
                        help="runs of each variant, interleaved (full, lora, full, ...): best tokens/s, lowest peak")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()

    baseline = run_variant("weights only", args)
    runs = [run_variant(variant, args) for _ in range(args.repeats) for variant in ("full", "lora")]
    rows = []
    for variant in ("full", "lora"):  # load from other processes only ever slows a run down or bloats it
        mine = [r for r in runs if r["variant"] == variant]
        rows.append({**mine[0], "peak_bytes": min(r["peak_bytes"] for r in mine),
                     "tokens_per_s": max(r["tokens_per_s"] for r in mine)})
    for row in rows:
        row["over_weights_bytes"] = row["peak_bytes"] - baseline["peak_bytes"]
    import torch

    machine = torch.cuda.get_device_name() if args.device.startswith("cuda") else cpu_name()
    result = {"machine": machine, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "size": args.size, "vocab": args.vocab, "batch": args.batch, "context": args.context,
              "rank": args.rank, "device": args.device, "weights_only_peak_bytes": baseline["peak_bytes"],
              "variants": rows}
    if args.json:
        print(json.dumps(result))
        return
    print(f"# {machine}, {result['threads']} threads, torch {torch.__version__}; size {args.size}, vocab "
          f"{args.vocab}, batch {args.batch} x {args.context}, fp32; weights-only process peak "
          f"{baseline['peak_bytes'] / 2**20:,.0f} MiB")
    print(f"{'variant':<10}{'trainable':>14}{'of total':>10}{'peak MiB':>11}{'over weights MiB':>18}{'tokens/s':>11}")
    for row in rows:
        print(f"{row['variant']:<10}{row['trainable']:>14,}{row['trainable'] / row['parameters']:>10.2%}"
              f"{row['peak_bytes'] / 2**20:>11,.0f}{row['over_weights_bytes'] / 2**20:>18,.0f}"
              f"{row['tokens_per_s']:>11,.0f}")


if __name__ == "__main__":
    main()
