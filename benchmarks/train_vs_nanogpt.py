"""One training step, gptscratch vs nanoGPT's model.py, side by side in one run (fp32 tokens/s).

What it measures: the same step for every implementation — forward, cross-entropy on (B, T) targets, backward,
clip the gradient norm to 1.0, AdamW (lr 6e-4, betas 0.9/0.95, weight decay 0.1 on matrices only, as nanoGPT
trains), zero_grad(set_to_none=True) — on the same shape (no dropout, bias on, tied embeddings, learned positions,
exact GELU, fp32) and the same seeded random token batches. AdamW is torch's fused kernel on both sides (CPU and
CUDA; what `gptscratch train` uses), so only the model code differs.

Why subprocess workers: each implementation lives in its own persistent Python process, so two gptscratch trees
(this one and a `git worktree` of an older commit) can be imported in the same run, and nanoGPT's model.py is
loaded from the user's own file at run time (its code is never copied here). Only one worker computes at a time
— the others block on their pipe — so they never compete for the cores. In each of R rounds every worker in turn
(order rotated each round) times a few consecutive steps; machine noise thus hits every side alike. Reported per
shape and implementation: median tokens/s over rounds, min–max, and the median of the per-round ratios to the
first implementation (nanoGPT when given).

    python benchmarks/train_vs_nanogpt.py --nanogpt PATH/model.py [--shapes 4x128,6x256] [--heads 4]
        [--context 64] [--batch 12] [--vocab 257] [--rounds 9] [--steps 20] [--warmup 5] [--threads N] [--json]

nanoGPT: `git clone https://github.com/karpathy/nanoGPT` and pass `--nanogpt nanoGPT/model.py` (without it that
side is skipped). A "before" tree to compare against:

    git worktree add /tmp/before <commit>
    python benchmarks/train_vs_nanogpt.py --nanogpt nanoGPT/model.py \\
        --impl nanogpt --impl gptscratch=/tmp/before --impl gptscratch
    git worktree remove /tmp/before

`--impl gptscratch` is this tree; `--impl gptscratch=PATH` is the package found at PATH (labelled
gptscratch@<short commit> when PATH is a git work tree). Figures belong in docs/benchmarks.md, with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

THIS_TREE = Path(__file__).resolve().parent.parent
NANOGPT_NOTE = "nanoGPT skipped: git clone https://github.com/karpathy/nanoGPT and pass --nanogpt nanoGPT/model.py"


# ---------------------------------------------------------------------------------------------- worker side
def build_model(kind: str, path: str, n_layer: int, d_model: int, n_head: int, context: int, vocab: int):
    """The model of one implementation; `path` is nanoGPT's model.py or the folder holding the gptscratch package."""
    if kind == "nanogpt":
        import importlib.util

        spec = importlib.util.spec_from_file_location("nanogpt_model", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its @dataclass looks its module up in sys.modules
        spec.loader.exec_module(module)
        config = module.GPTConfig(block_size=context, vocab_size=vocab, n_layer=n_layer, n_head=n_head,
                                  n_embd=d_model, dropout=0.0, bias=True)
        return module.GPT(config)
    if sys.path[0] != path:
        sys.path.insert(0, path)  # ahead of any installed gptscratch
    import gptscratch

    if Path(gptscratch.__file__).resolve().parent.parent != Path(path).resolve():
        raise RuntimeError(f"imported gptscratch from {gptscratch.__file__}, not from {path}")
    try:
        from gptscratch.model import GPT, ModelConfig
    except ImportError:  # a tree whose model/__init__ does not re-export them
        from gptscratch.model.config import ModelConfig
        from gptscratch.model.gpt import GPT
    return GPT(ModelConfig(vocab_size=vocab, context_length=context, n_layer=n_layer, n_head=n_head,
                           d_model=d_model, dropout=0.0, bias=True, positional="learned", activation="gelu",
                           norm_placement="pre", tie_weights=True))


def worker() -> None:
    """Answer JSON-line commands on stdin: {"build": ...} → parameter count, {"time": steps} → seconds."""
    reply = os.fdopen(os.dup(1), "w", buffering=1)  # the protocol keeps the real stdout ...
    os.dup2(2, 1)                                   # ... and anything printed (nanoGPT prints) goes to stderr
    sys.stdout = sys.stderr
    setup = json.loads(sys.stdin.readline())
    import torch

    torch.set_num_threads(setup["threads"])
    device = torch.device(setup["device"])
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)  # time finished work only
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    reply.write(json.dumps({"torch": torch.__version__, "gpu": gpu}) + "\n")
    model = optimizer = batches = None
    step_count = 0

    def step() -> None:
        nonlocal step_count
        x, y = batches[step_count % len(batches)]
        step_count += 1
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for line in sys.stdin:
        command = json.loads(line)
        if "build" in command:
            b = command["build"]
            torch.manual_seed(setup["seed"])
            model = build_model(setup["kind"], setup["path"], b["n_layer"], b["d_model"], b["n_head"],
                                b["context"], b["vocab"]).to(device).train()
            params = list(model.parameters())
            groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
                      {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
            optimizer = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), fused=True)
            generator = torch.Generator().manual_seed(setup["seed"])  # the same 8 batches on every side
            tokens = [torch.randint(b["vocab"], (b["batch"], b["context"] + 1), generator=generator) for _ in range(8)]
            batches = [(t[:, :-1].contiguous().to(device), t[:, 1:].contiguous().to(device)) for t in tokens]
            for _ in range(setup["warmup"]):
                step()
            sync()
            reply.write(json.dumps({"params": sum(p.numel() for p in params)}) + "\n")
        elif "time" in command:
            sync()
            start = time.perf_counter()
            for _ in range(command["time"]):
                step()
            sync()
            reply.write(json.dumps({"seconds": time.perf_counter() - start}) + "\n")


# ---------------------------------------------------------------------------------------------- driver side
class Worker:
    """One implementation in its own process; ask() sends a command and waits for its one-line answer."""

    def __init__(self, label: str, kind: str, path: str, setup: dict):
        self.label, self.path = label, path
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=self.stderr, text=True, bufsize=1)
        self.hello = self.ask({**setup, "kind": kind, "path": path})

    def ask(self, command: dict) -> dict:
        try:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it died: reading its answer below reports why
        line = self.process.stdout.readline()
        if not line:
            self.process.wait()
            self.stderr.seek(0)
            raise RuntimeError(f"worker {self.label} exited with status {self.process.returncode}:\n"
                               + self.stderr.read()[-4000:])
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def implementations(args) -> list[tuple[str, str, str]]:
    """(label, kind, path) for each --impl, in order; the default is nanoGPT (when given) and this tree."""
    specs = args.impl or (["nanogpt"] if args.nanogpt else []) + ["gptscratch"]
    result = []
    for spec in specs:
        if spec == "nanogpt":
            if not (args.nanogpt and Path(args.nanogpt).is_file()):
                sys.exit(f"error: --nanogpt {args.nanogpt}: pass the path of nanoGPT's model.py "
                         "(git clone https://github.com/karpathy/nanoGPT)")
            result.append(("nanogpt", "nanogpt", str(Path(args.nanogpt).resolve())))
        elif spec == "gptscratch":
            result.append(("gptscratch", "gptscratch", str(THIS_TREE)))
        elif spec.startswith("gptscratch="):
            root = Path(spec.split("=", 1)[1]).expanduser().resolve()
            root = root.parent if (root / "__init__.py").is_file() else root  # the package folder itself
            if not (root / "gptscratch" / "__init__.py").is_file():
                sys.exit(f"error: {spec}: no gptscratch package under {root}; give the folder that holds it")
            commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                    text=True).stdout.strip() if shutil.which("git") else ""
            result.append((f"gptscratch@{commit}" if commit else str(root), "gptscratch", str(root)))
        else:
            sys.exit(f"error: --impl {spec!r}: use nanogpt, gptscratch or gptscratch=PATH")
    labels = [label for label, _, _ in result]
    for i, (label, kind, path) in enumerate(result):
        if labels.count(label) > 1:  # the same tree twice: an A/A run, which shows the noise
            result[i] = (f"{label}#{labels[:i + 1].count(label)}", kind, path)
    return result


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
             if line.startswith("model name")]
    return names[0] if names else platform.processor() or platform.machine()


def measure(workers: list[Worker], shape: dict, args) -> list[dict]:
    """Build every model of one shape, check the parameter counts agree, then time the interleaved rounds."""
    params = {}
    for w in workers:
        print(f"{shape['n_layer']}x{shape['d_model']}: building and warming up {w.label}", file=sys.stderr)
        params[w.label] = w.ask({"build": shape})["params"]
    if len(set(params.values())) > 1:
        raise RuntimeError(f"parameter counts differ at {shape['n_layer']}x{shape['d_model']}: {params}")
    seconds = {w.label: [] for w in workers}
    for r in range(args.rounds):
        for w in workers[r % len(workers):] + workers[:r % len(workers)]:
            time.sleep(0.05)  # let the previous worker's idle threads stop spinning
            seconds[w.label].append(w.ask({"time": args.steps})["seconds"])
    tokens = args.steps * args.batch * args.context
    rates = {label: [tokens / s for s in values] for label, values in seconds.items()}
    first = rates[workers[0].label]
    return [{"shape": f"{shape['n_layer']}x{shape['d_model']}", **shape, "implementation": w.label, "path": w.path,
             "params": params[w.label], "tokens_per_s": statistics.median(rates[w.label]),
             "min": min(rates[w.label]), "max": max(rates[w.label]),
             "ratio_to_first": statistics.median(a / b for a, b in zip(rates[w.label], first)),
             "rounds_tokens_per_s": rates[w.label]} for w in workers]


def parse_shapes(args) -> list[dict]:
    shapes = []
    for text in args.shapes.split(","):
        n_layer, d_model = (int(n) for n in text.lower().split("x"))  # ValueError unless "<int>x<int>"
        if d_model % args.heads:
            raise ValueError(f"width {d_model} is not divisible by --heads {args.heads}")
        shapes.append(dict(n_layer=n_layer, d_model=d_model, n_head=args.heads, context=args.context,
                           batch=args.batch, vocab=args.vocab))
    return shapes


def print_table(header: dict, results: list[dict]) -> None:
    gpu = f" · GPU: {header['gpu']}" if header["gpu"] else ""
    print(f"CPU: {header['cpu']}{gpu} · torch {header['torch']} · {header['device']}, {header['threads']} threads"
          f" · fp32 · {header['optimizer']}")
    print(f"step: forward, cross-entropy, backward, clip 1.0, AdamW, zero_grad · context {header['context']}, "
          f"batch {header['batch']}, vocab {header['vocab']} · {header['rounds']} rounds × {header['steps']} "
          f"steps after {header['warmup']} warm-up")
    for label, path in header["implementations"].items():
        print(f"  {label}: {path}")
    print(f"\n{'shape':<14}{'implementation':<22}{'params':>11}{'tokens/s':>11}  {'min–max':<17}"
          f"× {results[0]['implementation']}")
    for row in results:
        shape, spread = f"{row['shape']} ({row['n_head']}h)", f"{row['min']:,.0f}–{row['max']:,.0f}"
        print(f"{shape:<14}{row['implementation']:<22}{row['params']:>11,}{row['tokens_per_s']:>11,.0f}  "
              f"{spread:<17}{row['ratio_to_first']:.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nanogpt", help="path of nanoGPT's model.py (git clone https://github.com/karpathy/nanoGPT)")
    parser.add_argument("--impl", action="append", help="nanogpt, gptscratch (this tree) or gptscratch=PATH; repeat")
    parser.add_argument("--shapes", default="4x128,6x256", help="layers x width, comma-separated")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    for name, default, help_text in (("heads", 4, "attention heads"), ("context", 64, "tokens per sequence"),
                                     ("batch", 12, "sequences per step"), ("vocab", 257, "vocabulary size"),
                                     ("rounds", 9, "interleaved rounds"), ("steps", 20, "timed steps per round"),
                                     ("warmup", 5, "untimed steps after each build"), ("seed", 0, "model and data"),
                                     ("threads", cores, "torch.set_num_threads (default: all cores)")):
        parser.add_argument(f"--{name}", type=int, default=default, help=help_text)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker()
        return 0
    try:
        shapes = parse_shapes(args)
    except ValueError as error:
        parser.error(f"--shapes {args.shapes!r}: {error}; give layers x width, e.g. 4x128,6x256")
    impls = implementations(args)
    if not args.nanogpt:
        print(NANOGPT_NOTE, file=sys.stderr)
    setup = {"threads": args.threads, "device": args.device, "seed": args.seed, "warmup": args.warmup}
    workers: list[Worker] = []
    try:
        for label, kind, path in impls:
            workers.append(Worker(label, kind, path, setup))
        results = [row for shape in shapes for row in measure(workers, shape, args)]
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        for w in workers:
            w.process.kill()
        return 1
    for w in workers:
        w.close()
    header = {"cpu": cpu_name(), "gpu": workers[0].hello["gpu"], "torch": workers[0].hello["torch"],
              "device": args.device,
              "threads": args.threads, "dtype": "float32",
              "optimizer": "fused AdamW",
              **{k: getattr(args, k) for k in ("context", "batch", "vocab", "rounds", "steps", "warmup")},
              "implementations": {w.label: w.path for w in workers}}
    if args.json:
        print(json.dumps({**header, "results": results}, indent=2))
    else:
        print_table(header, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
