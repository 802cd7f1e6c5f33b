"""`gptscratch train`: train a model (or resume a run) from a preset and flags."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gptscratch.cli.render import log, print_json, progress_callback
from gptscratch.cli.settings import announce_device

app = typer.Typer(help="Train a GPT from scratch (or resume a run).", no_args_is_help=False)

Opt = typer.Option


def _render_event(callback, event: dict) -> None:
    """Translate the trainer's events into the progress display."""
    kind = event.get("event")
    if kind is None:  # data preparation progress: forward as it is
        callback(event)
    elif kind == "start":
        callback({"message": f"run: {event['run_dir']}  ({event['parameters']:,} parameters, dataset "
                             f"{event['dataset']}, tokenizer {event['tokenizer']}, {event['precision']}, "
                             f"{event['tokens_per_step']:,} tokens/step)",
                  "description": "train", "total": 100, "completed": 0, "unit": "%"})
    elif kind == "step":
        callback({"completed": round(100 * min(event["progress"], 1.0), 1), "step": event["step"],
                  "loss": event["loss"], "lr": event["lr"], "tok/s": round(event["tokens_per_s"])})
    elif kind == "eval":
        callback({"message": f"step {event['step']}: val loss {event['val_loss']:.4f} "
                             f"(perplexity {event['val_perplexity']:.2f})", "val": event["val_loss"]})


@app.callback(invoke_without_command=True)
def train(
    ctx: typer.Context,
    preset: Annotated[Optional[str], Opt(help="Recipe: quick (offline CPU demo, ~2 min).")] = None,
    data: Annotated[Optional[str], Opt(help="Prepared dataset name, or a source: builtin, a file, folder or glob.")] = None,
    tokenizer: Annotated[Optional[str], Opt(help="byte, char, cl100k_base, r50k_base, p50k_base, o200k_base.")] = None,
    size: Annotated[Optional[str], Opt(help="Named model shape: tiny, mini, small, medium, gpt2.")] = None,
    n_layer: Annotated[Optional[int], Opt(help="Transformer blocks.")] = None,
    n_head: Annotated[Optional[int], Opt(help="Attention heads per block.")] = None,
    d_model: Annotated[Optional[int], Opt(help="Width of the residual stream.")] = None,
    context_length: Annotated[Optional[int], Opt(help="Tokens the model attends over.")] = None,
    dropout: Annotated[Optional[float], Opt(help="Dropout probability.")] = None,
    positional: Annotated[Optional[str], Opt(help="learned, sinusoidal or rope.")] = None,
    batch_size: Annotated[Optional[int], Opt(help="Sequences per micro-batch.")] = None,
    grad_accum: Annotated[Optional[int], Opt(help="Micro-batches per optimizer step.")] = None,
    lr: Annotated[Optional[float], Opt(help="Peak learning rate.")] = None,
    warmup: Annotated[Optional[float], Opt(help="Warmup as a fraction of the run.")] = None,
    weight_decay: Annotated[Optional[float], Opt(help="AdamW weight decay on matrices.")] = None,
    max_steps: Annotated[Optional[int], Opt(help="Stop after this many optimizer steps.")] = None,
    max_time: Annotated[Optional[str], Opt(help="Stop after this wall time: 90, 90s, 3m, 1h.")] = None,
    eval_every: Annotated[Optional[int], Opt(help="Steps between validation runs and checkpoints.")] = None,
    eval_batches: Annotated[Optional[int], Opt(help="Batches per validation run.")] = None,
    save_every: Annotated[Optional[int], Opt(help="Steps between checkpoints (default: every eval).")] = None,
    seed: Annotated[Optional[int], Opt(help="Random seed (weights init and data order).")] = None,
    precision: Annotated[Optional[str], Opt(help="auto, fp32 or bf16.")] = None,
    out: Annotated[Optional[Path], Opt(help="Run folder (default: a new folder in the cache).")] = None,
    resume: Annotated[Optional[str], Opt(help="Continue the run in this folder (or run name).")] = None,
    json_output: Annotated[bool, Opt("--json", help="Print the final summary as JSON on stdout.")] = False,
) -> None:
    """Train a GPT. Example: gptscratch train --preset quick"""
    if ctx.invoked_subcommand is not None:
        return
    from gptscratch.training import parse_duration, preset_config, resume_config, train as run_training

    budget = {"max_steps": max_steps, "max_time": parse_duration(max_time)}
    if resume is not None:
        checkpoint_dir, config = resume_config(resume)
        config = config.replace(**{k: v for k, v in budget.items() if v is not None})
    else:
        checkpoint_dir = None
        model = {k: v for k, v in dict(n_layer=n_layer, n_head=n_head, d_model=d_model,
                                       context_length=context_length, dropout=dropout,
                                       positional=positional).items() if v is not None}
        config = preset_config(
            preset, data=data, tokenizer=tokenizer, size=size, model=model, batch_size=batch_size,
            grad_accum=grad_accum, lr=lr, warmup=warmup, weight_decay=weight_decay, eval_every=eval_every,
            eval_batches=eval_batches, save_every=save_every, seed=seed, precision=precision, **budget)
    device = announce_device()
    with progress_callback("train") as callback:
        result = run_training(config, device=device, run_dir=out, resume_from=checkpoint_dir, label=preset,
                              progress=lambda event: _render_event(callback, event))
    summary = result.to_dict()
    if json_output:
        print_json(summary)
    val = f"{result.val_loss:.4f}" if result.val_loss is not None else "-"
    log(f"done: {result.step} steps, {result.tokens:,} tokens in {result.elapsed:.0f}s "
        f"({result.tokens_per_second:,.0f} tokens/s), val loss {val}; checkpoint {result.run_dir}/latest")
