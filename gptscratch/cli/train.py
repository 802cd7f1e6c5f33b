"""`gptscratch train`: train a model (or resume a run) from a preset, a recipe file and flags;
`gptscratch train runs` lists runs; `gptscratch train plot RUN` shows a run's curves.

The same command runs under `torchrun --nproc_per_node=N -m gptscratch train ...`: every rank parses the
same flags, only rank 0 prints (the others are made quiet here) and writes files (the trainer sees to that).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from gptscratch.cli.model_options import model_options
from gptscratch.cli.render import announce_device, log, print_json, progress_callback, show, table, warn
from gptscratch.cli.settings import SETTINGS
from gptscratch.tokenizers import describe_names

app = typer.Typer(help="Train a GPT from scratch (or resume a run); list, plot and report runs.", no_args_is_help=False)

Opt = typer.Option
RESUME_LATEST = ":latest"
FINETUNE = "Fine-tuning (LoRA, chat template)"   # what a bare `--resume` stands for


def with_bare_resume(args: list[str]) -> list[str]:
    """`train --resume` with no value (last, or followed by another option) means the most recent run: give it
    the value that says so. (Typer's parser has no options with optional values, so the CLI's entry point
    rewrites the arguments before parsing.)"""
    if "train" not in args:
        return args
    out, after_train = [], False
    for index, arg in enumerate(args):
        out.append(arg)
        after_train = after_train or arg == "train"
        following = args[index + 1] if index + 1 < len(args) else None
        if after_train and arg == "--resume" and (following is None or following.startswith("-")):
            out.append(RESUME_LATEST)
    return out


def _render_event(callback, event: dict) -> None:
    """Translate the trainer's events into the progress display."""
    kind = event.get("event")
    if kind is None:  # data preparation progress: forward as it is
        callback(event)
    elif kind == "start":
        ranks = f", {event['world_size']} processes" if event.get("world_size", 1) > 1 else ""
        callback({"message": f"run: {event['run_dir']}  ({event['parameters']:,} parameters, dataset "
                             f"{event['dataset']}, tokenizer {event['tokenizer']}, {event['precision']}"
                             f"{', compiled' if event.get('compile') else ''}{ranks}, "
                             f"{event['tokens_per_step']:,} tokens/step)",
                  "description": "train", "total": 100, "completed": 0, "unit": "%"})
    elif kind == "step":
        callback({"completed": round(100 * min(event["progress"], 1.0), 1), "step": event["step"],
                  "loss": event["loss"], "lr": event["lr"], "tok/s": round(event["tokens_per_s"])})
    elif kind == "eval":
        callback({"message": f"step {event['step']}: val loss {event['val_loss']:.4f} "
                             f"(perplexity {event['val_perplexity']:.2f})", "val": event["val_loss"]})
        if event.get("sample") is not None:
            callback({"message": "  sample: " + event["sample"].replace("\n", "⏎")[:200]})
    elif kind == "warning":
        callback({"message": f"warning: {event['message']}"})
    elif kind == "debug":
        acts = " ".join(f"{k.split('.')[-1]}:{v['max_abs']:.3g}" for k, v in event["activations"].items())
        bad = f" NON-FINITE grads: {', '.join(event['grad_nonfinite'][:4])}" if event["grad_nonfinite"] else ""
        callback({"message": f"debug step {event['step']}: grad norm {event['grad_norm']:.4g}, max |g| "
                             f"{event['grad_max_abs']:.3g} at {event['grad_max_at']}; block max |x| {acts}{bad}"})


@app.callback(invoke_without_command=True)
@model_options
def train(
    ctx: typer.Context,
    preset: Annotated[Optional[str], Opt(help="Recipe: quick (CPU, ~2 min), medium or full (FineWeb-Edu, one GPU).")] = None,
    config_file: Annotated[Optional[Path], Opt("--config", help="Recipe file (.toml/.yaml) of these settings; flags override it.")] = None,
    data: Annotated[Optional[str], Opt(help="Prepared dataset name, or a source: builtin, fineweb-edu, a file, folder or glob (train sft: conversations .jsonl/.parquet/hf:, or builtin-chat).")] = None,
    tokenizer: Annotated[Optional[str], Opt(help=f"{describe_names()}.")] = None,
    size: Annotated[Optional[str], Opt("--size", "--model-size", help="Named model shape: tiny, mini, small, medium, gpt2.")] = None,
    init_from: Annotated[Optional[str], Opt(help="Start from these weights: a run/checkpoint folder, run name or pretrained name.")] = None,
    batch_size: Annotated[Optional[int], Opt(help="Sequences per micro-batch (per process).")] = None,
    grad_accum: Annotated[Optional[int], Opt(help="Micro-batches per optimizer step (in total over all processes).")] = None,
    lr: Annotated[Optional[float], Opt(help="Peak learning rate.")] = None,
    min_lr_ratio: Annotated[Optional[float], Opt(help="Final learning rate as a fraction of --lr (0.1).")] = None,
    warmup: Annotated[Optional[float], Opt(help="Warmup as a fraction of the run (0.05).")] = None,
    weight_decay: Annotated[Optional[float], Opt(help="Weight decay on matrices, AdamW's and Muon's (0.1).")] = None,
    beta1: Annotated[Optional[float], Opt(help="AdamW β1 (0.9).")] = None,
    beta2: Annotated[Optional[float], Opt(help="AdamW β2 (0.95).")] = None,
    optimizer: Annotated[Optional[str], Opt(help="adamw, or muon: Muon for the blocks' matrices, AdamW for the rest.")] = None,
    muon_lr: Annotated[Optional[float], Opt(help="Muon's peak learning rate (0.02; --lr stays AdamW's).")] = None,
    grad_clip: Annotated[Optional[float], Opt(help="Clip the gradient norm to this (1.0; 0 = off).")] = None,
    max_steps: Annotated[Optional[int], Opt(help="Stop after this many optimizer steps.")] = None,
    max_time: Annotated[Optional[str], Opt(help="Stop after this wall time: 90, 90s, 3m, 1h.")] = None,
    max_tokens: Annotated[Optional[str], Opt(help="Stop after this many training tokens: 50M, 1.5B.")] = None,
    eval_every: Annotated[Optional[int], Opt(help="Steps between validation runs (and checkpoints).")] = None,
    eval_batches: Annotated[Optional[int], Opt(help="Batches per validation run.")] = None,
    sample_tokens: Annotated[Optional[int], Opt(help="Tokens of the sample shown at each validation (0: none).")] = None,
    save_every: Annotated[Optional[int], Opt(help="Steps between checkpoints (default: every eval).")] = None,
    log_every: Annotated[Optional[int], Opt(help="Steps between metrics lines.")] = None,
    seed: Annotated[Optional[int], Opt(help="Random seed (weights init and data order).")] = None,
    precision: Annotated[Optional[str], Opt(help="auto (bf16 where it is faster), fp32 or bf16.")] = None,
    compile_model: Annotated[Optional[bool], Opt("--compile/--no-compile", help="torch.compile (default: on for CUDA only).")] = None,
    manual_backward: Annotated[bool, Opt("--manual-backward", help="Backpropagate with the hand-written layer backwards in gptscratch/manual (fp32; slower, for learning).")] = False,
    lora_rank: Annotated[Optional[int], Opt(help="LoRA rank r (0: off). With r > 0 only low-rank adapters train.", rich_help_panel=FINETUNE)] = None,
    lora_alpha: Annotated[Optional[float], Opt(help="LoRA α: adapters are scaled by α / r (16).", rich_help_panel=FINETUNE)] = None,
    lora_dropout: Annotated[Optional[float], Opt(help="Dropout on the adapters' input (0).", rich_help_panel=FINETUNE)] = None,
    lora_targets: Annotated[Optional[str], Opt(help="Layers that get adapters: any of qkv,proj,gate,up,down (all).", rich_help_panel=FINETUNE)] = None,
    chat_template: Annotated[Optional[str], Opt(help="train sft: auto (the model's own, else gptscratch's), gptscratch, or a Jinja file.", rich_help_panel=FINETUNE)] = None,
    fsdp: Annotated[bool, Opt("--fsdp", help="Under torchrun: shard weights, gradients and optimizer state (FSDP) instead of replicating them.")] = False,
    debug: Annotated[bool, Opt("--debug", help="Anomaly detection + per-step gradient/activation stats (slow).")] = False,
    out: Annotated[Optional[Path], Opt(help="Run folder (default: a new folder in the cache).")] = None,
    resume: Annotated[Optional[str], Opt(metavar="[RUN]", help="Continue a run: its folder or name; alone, the most recent run.")] = None,
    dry_run: Annotated[bool, Opt("--dry-run", help="Show the effective config, size, memory and FLOPs; train nothing.")] = False,
    json_output: Annotated[bool, Opt("--json", help="Print the result as JSON on stdout.")] = False,
    model: dict | None = None,
) -> None:
    """Train a GPT. Example: gptscratch train --preset quick"""
    if ctx.invoked_subcommand is not None:
        return
    _train_command("pretrain", **{k: v for k, v in locals().items() if k != "ctx"})


def sft(**options) -> None:
    """Supervised fine-tuning on conversations: loss on the assistant's replies only. Example:
    gptscratch train sft --data builtin-chat --init-from RUN"""
    _train_command("sft", **options)


# `train sft` takes every option `train` takes (written once, above); only the stage differs.
sft.__signature__ = inspect.signature(train.__wrapped__, eval_str=True).replace(
    parameters=[p for p in inspect.signature(train.__wrapped__, eval_str=True).parameters.values() if p.name != "ctx"])
app.command("sft")(model_options(sft))


def _train_command(stage: str, *, preset, config_file, data, tokenizer, size, init_from, batch_size, grad_accum, lr, min_lr_ratio, warmup, weight_decay, beta1, beta2, optimizer, muon_lr, grad_clip, max_steps, max_time, max_tokens, eval_every, eval_batches, sample_tokens, save_every, log_every, seed, precision, compile_model, manual_backward, lora_rank, lora_alpha, lora_dropout, lora_targets, chat_template, fsdp, debug, out, resume, dry_run, json_output, model: dict | None = None) -> None:
    """The body both commands share: plan (new run or resume), then train or show the plan."""
    from gptscratch.training import parse_count, parse_duration, plan_new_run, plan_resume
    from gptscratch.training import train as run_training

    if int(os.environ.get("RANK", "0") or 0) > 0:  # torchrun: only rank 0 speaks
        SETTINGS.quiet = True
    if debug:
        SETTINGS.debug = True  # tracebacks too
    budget = {"max_steps": max_steps, "max_time": parse_duration(max_time), "max_tokens": parse_count(max_tokens)}
    settings = dict(data=data, tokenizer=tokenizer, size=size, init_from=init_from, batch_size=batch_size,
                    grad_accum=grad_accum, lr=lr, min_lr_ratio=min_lr_ratio, warmup=warmup,
                    weight_decay=weight_decay, beta1=beta1, beta2=beta2, optimizer=optimizer, muon_lr=muon_lr,
                    grad_clip=grad_clip, eval_every=eval_every,
                    eval_batches=eval_batches, sample_tokens=sample_tokens, save_every=save_every,
                    log_every=log_every, seed=seed, precision=precision, compile=compile_model,
                    debug=debug or None, manual_backward=manual_backward or None, lora_rank=lora_rank,
                    lora_alpha=lora_alpha, lora_dropout=lora_dropout, lora_targets=lora_targets,
                    chat_template=chat_template, fsdp=fsdp or None,
                    stage="sft" if stage == "sft" else None)  # `train --resume` continues any run, sft too
    if resume is not None:
        checkpoint_dir, config = plan_resume(None if resume == RESUME_LATEST else resume, settings, model, budget,
                                             out=out, preset=preset, config_file=config_file)
        label = None
        if resume == RESUME_LATEST:
            log(f"resuming the most recent run: {checkpoint_dir.parent}")
    else:
        checkpoint_dir = None
        config, label = plan_new_run(preset, config_file, settings, model, budget)
        if stage == "sft":
            label = f"sft-{label}" if label else "sft"
    device = announce_device()
    if dry_run:
        _show_plan(config, device, json_output)
        return
    with progress_callback("train") as callback:
        result = run_training(config, device=device, run_dir=out, resume_from=checkpoint_dir, label=label,
                              progress=lambda event: _render_event(callback, event))
    if int(os.environ.get("RANK", "0") or 0) > 0:
        return
    if json_output:
        print_json(result.to_dict())
    val = f"{result.val_loss:.4f}" if result.val_loss is not None else "-"
    log(f"done ({result.stop_reason}): {result.step} steps, {result.tokens:,} tokens in {result.elapsed:.0f}s "
        f"({result.tokens_per_second:,.0f} tokens/s), val loss {val}; checkpoint {result.run_dir}/latest")


def _show_plan(config, device: str, json_output: bool) -> None:
    from gptscratch.training.estimate import human_bytes, plan_run

    plan = plan_run(config, device)
    if json_output:
        print_json(plan)
        return
    m = plan["model"]
    rows = [
        ("model", f"{m['n_layer']} layers × {m['d_model']} wide × {m['n_head']} heads, context {m['context_length']}, "
                  f"vocab {plan['vocab_size']:,} ({plan['tokenizer']})"),
        ("parameters", f"{plan['parameters']:,} ({plan['non_embedding_parameters']:,} without embeddings)"),
        ("tokens per optimizer step", f"{plan['tokens_per_step']:,} ({config.batch_size} × {m['context_length']} × "
                                      f"{config.grad_accum} accumulation)"),
        ("training FLOPs per token", f"{plan['flops_per_token']:.3g}"),
        ("estimated memory", f"{human_bytes(plan['memory_bytes'])} ({plan['precision']} on {device}; ±50%)"),
        ("checkpoint size", human_bytes(plan["checkpoint_bytes"])),
        ("budget", ", ".join(f"{k} {v}" for k, v in (("max_steps", config.max_steps), ("max_time", config.max_time),
                                                      ("max_tokens", config.max_tokens)) if v)),
    ]
    if plan.get("steps"):
        rows.append(("steps × tokens", f"{plan['steps']:,} steps, {plan['tokens']:,} tokens, "
                                       f"{plan['total_flops']:.3g} FLOPs"))
    rows.append(("effective config", " ".join(f"{k}={v}" for k, v in plan["config"].items() if k != "model")
                 + f" model={plan['config']['model']}"))
    show(table("dry run (nothing trained)", ["", "value"], rows))


@app.command("runs")
def runs(
    root: Annotated[Optional[Path], Opt(help="Folder holding run folders (default: the cache's runs folder).")] = None,
    json_output: Annotated[bool, Opt("--json", help="Print the runs as JSON on stdout.")] = False,
) -> None:
    """List training runs: steps, tokens, best validation loss, size, path."""
    from gptscratch.training.runs import list_run_summaries

    rows = list_run_summaries(root)
    if json_output:
        print_json(rows)
        return
    if not rows:
        log("no runs yet; train one with `gptscratch train --preset quick`")
        return
    show(table("runs", ["name", "steps", "tokens", "best val loss", "parameters", "shape", "path"],
               [(r["name"], r.get("step"), r.get("tokens"), r.get("best_val_loss"), r.get("parameters"),
                 r.get("shape", r.get("error")), r["path"]) for r in rows]))


@app.command("plot")
def plot(
    run: Annotated[str, typer.Argument(help="Run folder or run name.")],
    out: Annotated[Optional[Path], Opt(help="PNG to write (default: RUN/curves.png).")] = None,
    png: Annotated[bool, Opt("--png/--no-png", help="Write the PNG (needs matplotlib).")] = True,
    json_output: Annotated[bool, Opt("--json", help="Print the curve summary as JSON on stdout.")] = False,
) -> None:
    """Show a run's train/val loss and learning rate: terminal sparklines, and a PNG with matplotlib."""
    from gptscratch.errors import UsageError
    from gptscratch.training.runs import check_png_path, curves, plot_png, summary_lines

    run_dir = _run_folder(run)
    target = out or run_dir / "curves.png"
    if png:
        check_png_path(target)  # before reading anything: a wrong --out must not cost a thing
    series = curves(run_dir)
    lines = summary_lines(series)
    written = None
    if png:
        try:
            written = plot_png(series, target, title=run_dir.name)
        except UsageError:
            if out is not None:
                raise
            warn("no PNG written: matplotlib is not installed (`pip install matplotlib`)")
    if json_output:
        print_json({"run": str(run_dir), "png": str(written) if written else None, "curves": lines})
        return
    show(table(f"run {run_dir.name}", ["curve", "trend", "first", "last", "min (step)"],
               [(r["name"], r["spark"], r["first"], r["last"], f"{r['min']:.4g} ({r['min_step']})") for r in lines]))
    if written:
        log(f"wrote {written}")


@app.command("report")
def report(
    run: Annotated[str, typer.Argument(help="Run folder or run name.")],
    html: Annotated[Optional[Path], Opt("--html", metavar="FILE.html",
                                        help="Page to write (default: RUN/report.html).")] = None,
    json_output: Annotated[bool, Opt("--json", help="Print the report as JSON on stdout (no page written).")] = False,
) -> None:
    """A run's report card as one HTML page: loss and learning-rate curves, samples over time, config, dataset."""
    from gptscratch.paths import check_html_destination
    from gptscratch.training.report import run_report

    run_dir = _run_folder(run)
    target = check_html_destination(html or run_dir / "report.html", "--html") if not json_output or html else None
    data = run_report(run_dir)
    if json_output:
        print_json(data)
    if target is not None:
        from gptscratch.views import write_page

        log(f"wrote {write_page(target, 'report', f'gptscratch run {run_dir.name}', data)}")


def _run_folder(run: str) -> Path:
    from gptscratch import checkpoint as ckpt
    from gptscratch.paths import runs_root

    for candidate in (Path(run).expanduser(), runs_root() / run):
        if (candidate / "metrics.jsonl").is_file():
            return candidate
    found = ckpt.resolve_checkpoint(run)  # a checkpoint folder inside a run: its parent holds the metrics
    return found.parent if found.name in ckpt.RUN_CHECKPOINTS else found
