"""The offline post-training demonstration, measured: base model → chat model on builtin-chat, on this machine.

    python benchmarks/sft_demo.py [--base-steps N] [--sft-steps N] [--base RUN] [--json]

1. pretrain a base model with `train --preset quick` (byte-level, builtin corpus; --base-steps fixes its length
   instead of the preset's 110 s, so runs compare across machines), or reuse one with --base;
2. `eval chat` the base (the chat tokens added as SFT adds them at step 0, untrained);
3. `train sft --preset quick --init-from BASE` (--sft-steps fixes its length instead of the preset's 120 s);
4. `eval chat` the fine-tuned model on builtin-chat's 500 held-out questions (lists of digits never seen in
   training), and print accuracy per operation before and after, steps and wall times. Also written as JSON.

The same commands by hand: docs/finetuning.md, "The offline demonstration".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def cpu_name() -> str:
    from gptscratch.device import cpu_model

    return cpu_model()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="an existing base run to fine-tune (default: train one)")
    parser.add_argument("--base-steps", type=int, default=None, help="base optimizer steps (default: 110 s)")
    parser.add_argument("--sft-steps", type=int, default=None, help="SFT optimizer steps (default: 120 s)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="sft-demo-"))
    os.environ.setdefault("GPTSCRATCH_HOME", str(work / "home"))
    from gptscratch.evaluation.chat import evaluate_chat
    from gptscratch.training import preset_config, train

    result: dict = {"cpu": cpu_name(), "threads": os.cpu_count()}
    base = Path(args.base) if args.base else work / "base"
    if not args.base:
        budget = {"max_steps": args.base_steps, "max_time": 1e9} if args.base_steps else {}
        started = time.perf_counter()
        run = train(preset_config("quick", None, **budget), run_dir=base)
        result["base"] = {"steps": run.step, "seconds": round(time.perf_counter() - started, 1),
                          "val_loss": run.val_loss}
    before = evaluate_chat(str(base))
    budget = {"max_steps": args.sft_steps, "max_time": 1e9} if args.sft_steps else {}
    started = time.perf_counter()
    run = train(preset_config("quick", None, stage="sft", init_from=str(base), **budget), run_dir=work / "sft")
    result["sft"] = {"steps": run.step, "seconds": round(time.perf_counter() - started, 1), "val_loss": run.val_loss,
                     "tokens_per_second": round(run.tokens_per_second)}
    after = evaluate_chat(str(work / "sft"))
    result["accuracy"] = {"base": before["accuracy"], "sft": after["accuracy"],
                          "by_operation": {op: {"base": before["by_operation"][op]["accuracy"],
                                                "sft": after["by_operation"][op]["accuracy"]}
                                           for op in after["by_operation"]},
                          "questions": after["questions"]}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"CPU: {result['cpu']} ({result['threads']} threads)")
    if "base" in result:
        print(f"base:  {result['base']['steps']} steps in {result['base']['seconds']} s, val loss "
              f"{result['base']['val_loss']:.4f}")
    print(f"sft:   {result['sft']['steps']} steps in {result['sft']['seconds']} s "
          f"({result['sft']['tokens_per_second']:,} tokens/s), val loss {result['sft']['val_loss']:.4f}")
    print(f"{'operation':<10} {'base':>6} {'sft':>6}")
    for op, row in result["accuracy"]["by_operation"].items():
        print(f"{op:<10} {row['base']:>6.3f} {row['sft']:>6.3f}")
    print(f"{'all':<10} {result['accuracy']['base']:>6.3f} {result['accuracy']['sft']:>6.3f}   "
          f"({result['accuracy']['questions']} held-out questions)")


if __name__ == "__main__":
    main()
