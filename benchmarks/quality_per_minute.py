"""Quality per minute: validation loss per character after a fixed wall-clock budget, several recipes, one CPU.

    python benchmarks/quality_per_minute.py [--data FILE|builtin] [--budget 110] [--threads N]
        [--variant NAME='{"key": value, ...}' ...] [--only recipe,quick,NAME,...] [--json]

Every run trains a character-level model on the same corpus (`--tokenizer char`, 90/10 split by the data
pipeline) for the same wall-clock budget, through gptscratch's own training loop, one after the other:

  recipe  nanoGPT's CPU "baby GPT" (shakespeare_char config, README): 4 layers × 128 × 4 heads, context 64,
          batch 12, lr 1e-3 → 1e-4, β2 0.99, warmup 100 of 2000 iterations (5%), dropout 0, weight decay 0.1,
          grad clip 1.0, fp32 (nanoGPT uses no autocast on CPU). Its schedule runs over the time budget.
  quick   `--preset quick` with the char tokenizer, as it stands in the code being measured.
  NAME    an ablation: `--variant NAME=JSON` is the quick preset with those TrainConfig values on top (a "model"
          key holds ModelConfig fields, merged into quick's), e.g.
          --variant rmsnorm='{"model": {"norm": "rmsnorm"}}'  --variant muon='{"optimizer": "muon"}'

The score is the mean cross-entropy (nats per character) over *all* non-overlapping windows of the validation
split, each model at its own context length, measured after training (the same text for every run). The table
gives each run's score, steps, tokens/s, and its gain over quick and over recipe (positive = better). Timings
depend on load: compare only runs made in one invocation, state the machine, and re-run the winner.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RECIPE = dict(tokenizer="char", size="mini", model={"n_layer": 4, "d_model": 128, "n_head": 4, "context_length": 64,
                                                    "dropout": 0.0},
              batch_size=12, grad_accum=1, lr=1e-3, min_lr_ratio=0.1, beta2=0.99, warmup=0.05, weight_decay=0.1,
              grad_clip=1.0, precision="fp32", eval_every=250, eval_batches=20, sample_tokens=0)


def full_val_loss(run_dir: Path, data: str) -> float:
    """Mean loss per character over every non-overlapping window of the validation split."""
    import torch

    from gptscratch import checkpoint as ckpt
    from gptscratch.data import resolve_dataset

    loaded = ckpt.load_checkpoint(run_dir / "latest")
    model, T = loaded.model, loaded.model.config.context_length
    tokens = torch.from_numpy(resolve_dataset(data, "char").tokens("val").astype("int64"))
    n = (len(tokens) - 1) // T
    x, y = tokens[: n * T].view(n, T), tokens[1 : n * T + 1].view(n, T)
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, 64):
            _, loss = model(x[start:start + 64], y[start:start + 64])
            total += loss.item() * len(x[start:start + 64])
    return total / n


def config_of(name: str, data: str, budget: float, variants: dict):
    from gptscratch.training import preset_config

    if name == "recipe":
        return preset_config(None, data=data, max_time=budget, **RECIPE)
    changes = dict(variants.get(name, {}))
    return preset_config("quick", data=data, tokenizer="char", max_time=budget, sample_tokens=0, **changes)


def run(name: str, config, data: str, out: Path) -> dict:
    from gptscratch.training import train

    started = time.perf_counter()
    shutil.rmtree(out / name, ignore_errors=True)  # a rerun replaces its own earlier run (train refuses to mix)
    result = train(config, device="cpu", run_dir=out / name)
    wall = time.perf_counter() - started
    changed = {k: v for k, v in config.to_dict().items() if k in ("optimizer", "lr", "batch_size", "precision")}
    return {"name": name, "val_loss_per_char": round(full_val_loss(out / name, data), 4), "steps": result.step,
            "tokens_per_s": round(result.tokens_per_second), "wall_s": round(wall, 1), "model": config.model,
            **changed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="builtin", help="a text file or 'builtin'")
    parser.add_argument("--budget", type=float, default=110.0, help="wall-clock seconds per run")
    parser.add_argument("--variant", action="append", default=[], metavar="NAME=JSON",
                        help="an ablation: the quick preset with these TrainConfig values on top")
    parser.add_argument("--only", default=None, help="comma-separated runs (default: recipe, quick, every variant)")
    parser.add_argument("--out", type=Path, default=Path("/tmp/gptscratch-quality"))
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's). On an oversubscribed machine use 1: with 2 threads "
                             "on 2 busy cores a step was measured ~8× slower than with 1")
    parser.add_argument("--json", action="store_true", help="one JSON line per run instead of the table")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("GPTSCRATCH_HOME", str(args.out / "home"))
    variants = {}
    for item in args.variant:
        name, _, text = item.partition("=")
        variants[name] = json.loads(text)
    names = args.only.split(",") if args.only else ["recipe", "quick", *variants]
    from gptscratch.device import cpu_model

    print(f"{cpu_model()}, {torch.get_num_threads()} threads, torch {torch.__version__}, budget {args.budget:.0f} s, "
          f"load average {os.getloadavg()[0]:.2f} at start", flush=True)
    results = {}
    for name in names:
        results[name] = run(name, config_of(name, args.data, args.budget, variants), args.data, args.out)
        print(json.dumps(results[name]) if args.json else f"  done: {name} {results[name]['val_loss_per_char']}",
              flush=True)
    if args.json:
        return
    print(f"\n{'run':24} {'nats/char':>9} {'vs quick':>9} {'vs recipe':>9} {'steps':>6} {'tokens/s':>9}")
    for name, r in results.items():
        gains = [results[base]["val_loss_per_char"] - r["val_loss_per_char"] if base in results else None
                 for base in ("quick", "recipe")]
        cells = [f"{g:+9.4f}" if g is not None else f"{'-':>9}" for g in gains]
        print(f"{name:24} {r['val_loss_per_char']:9.4f} {cells[0]} {cells[1]} {r['steps']:6d} {r['tokens_per_s']:9d}")


if __name__ == "__main__":
    main()
