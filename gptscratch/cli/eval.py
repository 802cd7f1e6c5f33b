"""`gptscratch eval`: perplexity, checkpoint comparison, generation benchmark, HellaSwag, chat accuracy and any
task of EleutherAI's lm-evaluation-harness (`eval harness`, needs the optional lm-eval package).

Each command prints a table (or one JSON object with --json) to stdout; progress and logs go to stderr.
The library code lives in gptscratch/evaluation/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gptscratch.cli.render import announce_device, log, print_json, progress_callback, show, table
from gptscratch.cli.settings import SETTINGS
from gptscratch.errors import UsageError

app = typer.Typer(help="Evaluate checkpoints: perplexity, comparison, speed, HellaSwag, chat answers, lm-eval tasks.", no_args_is_help=True)
Arg, Opt = typer.Argument, typer.Option

DataOpt = Annotated[Optional[str], Opt("--data", "-d", help="Prepared dataset name or folder (default: the checkpoint's training data).")]
FileOpt = Annotated[Optional[Path], Opt("--file", help="Score a UTF-8 text file instead of a dataset.")]
SplitOpt = Annotated[str, Opt(help="Dataset split: val or train.")]
MaxTokensOpt = Annotated[Optional[int], Opt(help="Score only the first N tokens (default: all).")]
ContextOpt = Annotated[Optional[int], Opt(help="Window length (default: the model's context length).")]
StrideOpt = Annotated[Optional[int], Opt(help="Window step; smaller is slower and closer to the true loss (default: context/2).")]
BatchOpt = Annotated[int, Opt(help="Windows per forward pass.")]
JsonOpt = Annotated[bool, Opt("--json", help="Print JSON instead of a table.")]


def _check(data, file, max_tokens, stride, batch_size) -> str | None:
    if data is not None and file is not None:
        raise UsageError("give either --data or --file, not both")
    if max_tokens is not None and max_tokens < 2:
        raise UsageError(f"--max-tokens must be ≥ 2 (got {max_tokens})")
    if stride is not None and stride < 1:
        raise UsageError(f"--stride must be ≥ 1 (got {stride})")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1 (got {batch_size})")
    if file is None:
        return None
    from gptscratch.textfile import read_text_file

    return read_text_file(file)


def _score(checkpoint, data, text, split, max_tokens, context, stride, batch_size, device) -> dict:
    from gptscratch.evaluation.compare import score_checkpoint

    with progress_callback(f"scoring {checkpoint}") as progress:
        return score_checkpoint(checkpoint, data=data, text=text, split=split, max_tokens=max_tokens,
                                context=context, stride=stride, batch_size=batch_size, device=device,
                                progress=progress)


@app.command()
def perplexity(
    checkpoint: Annotated[str, Arg(help="Run folder, checkpoint folder or run name.")],
    data: DataOpt = None, file: FileOpt = None, split: SplitOpt = "val", max_tokens: MaxTokensOpt = None,
    context: ContextOpt = None, stride: StrideOpt = None, batch_size: BatchOpt = 4, json_output: JsonOpt = False,
) -> None:
    """Loss, perplexity and bits per byte on a dataset split or a text file (sliding window)."""
    text = _check(data, file, max_tokens, stride, batch_size)
    row = _score(checkpoint, data, text, split, max_tokens, context, stride, batch_size, announce_device())
    if json_output:
        print_json(row)
        return
    show(table(f"perplexity of {row['checkpoint']} on {file or row['data']}", ["metric", "value"], [
        ("tokens scored", row["tokens"]), ("bytes", row["bytes"]), ("loss (nats/token)", row["loss"]),
        ("perplexity", row["perplexity"]), ("bits per byte", row["bits_per_byte"]),
        ("window / stride", f"{row['context']} / {row['stride']}"), ("windows", row["windows"])]))


@app.command()
def compare(
    checkpoints: Annotated[list[str], Arg(help="Two or more checkpoints (run folders, checkpoint folders, names).")],
    data: DataOpt = None, file: FileOpt = None, split: SplitOpt = "val", max_tokens: MaxTokensOpt = None,
    context: ContextOpt = None, stride: StrideOpt = None, batch_size: BatchOpt = 4, json_output: JsonOpt = False,
) -> None:
    """Score several checkpoints on the same data: size, tokens trained, val loss, perplexity."""
    text = _check(data, file, max_tokens, stride, batch_size)
    device = announce_device()
    if data is None and text is None:
        from gptscratch.evaluation.compare import check_same_training_data

        check_same_training_data(checkpoints)
    rows = [_score(c, data, text, split, max_tokens, context, stride, batch_size, device) for c in checkpoints]
    if json_output:
        print_json({"checkpoints": rows})
        return
    show(table(f"checkpoints on {file or rows[0]['data']}",
               ["checkpoint", "parameters", "tokenizer", "tokens trained", "recorded val loss", "loss",
                "perplexity", "bits/byte"],
               [(_short(r["checkpoint"]), r["parameters"], r["tokenizer"], r["tokens_trained"], r["recorded_val_loss"],
                 r["loss"], r["perplexity"], r["bits_per_byte"]) for r in rows]))


def _short(path: str) -> str:
    """run/latest rather than the whole absolute path: the table stays narrow."""
    parts = Path(path).parts
    return str(Path(*parts[-2:])) if len(parts) >= 2 else path


@app.command()
def bench(
    checkpoint: Annotated[str, Arg(help="Run folder, checkpoint folder or run name.")],
    lengths: Annotated[Optional[str], Opt(help="Comma-separated numbers of new tokens (default: ¼, ½ and all of the context).")] = None,
    prompt_tokens: Annotated[int, Opt(help="Prompt length for the decoding runs.")] = 16,
    repeats: Annotated[int, Opt(help="Runs per figure; the median is reported.")] = 3,
    dtype: Annotated[str, Opt(help="auto, bf16 or fp32 (as in generate).")] = "auto",
    no_uncached: Annotated[bool, Opt("--no-uncached", help="Skip the slow runs without the KV cache.")] = False,
    json_output: JsonOpt = False,
) -> None:
    """Generation speed with and without the KV cache, prefill and decode tokens/s, peak memory."""
    from gptscratch.generation.precision import INFERENCE_DTYPES

    try:
        parsed = [int(n) for n in lengths.split(",")] if lengths else None
    except ValueError:
        raise UsageError(f"--lengths must be comma-separated integers such as 64,128 (got {lengths!r})") from None
    if parsed is not None and min(parsed) < 1:
        raise UsageError("--lengths must all be ≥ 1")
    if prompt_tokens < 1 or repeats < 1:
        raise UsageError("--prompt-tokens and --repeats must be ≥ 1")
    if dtype not in INFERENCE_DTYPES:
        raise UsageError(f"unknown --dtype {dtype!r}; choose one of {', '.join(INFERENCE_DTYPES)}")
    from gptscratch.cli.generate import _load
    from gptscratch.evaluation.bench import bench_generation

    model, _ = _load(checkpoint, dtype)
    with progress_callback("benchmarking") as progress:
        result = bench_generation(model, parsed, prompt_tokens=prompt_tokens, repeats=repeats,
                                  uncached=not no_uncached, progress=progress)
    if json_output:
        print_json(result)
        return
    log(f"{result['parameters']:,} parameters, {result['dtype']}, {result['threads']} threads; "
        f"prefill {result['prefill_tokens']} tokens: {result['prefill_tokens_per_second']:.0f} tokens/s; "
        f"peak memory {result['peak_memory_mb']:.0f} MB" if result["peak_memory_mb"] else "")
    show(table(f"generation speed (tokens/s, median of {repeats})",
               ["new tokens", "cached", "decode only", "uncached", "speed-up"],
               [(r["new_tokens"], r["cached_tokens_per_second"], r["decode_tokens_per_second"],
                 r.get("uncached_tokens_per_second"), r.get("speedup")) for r in result["lengths"]]))


@app.command()
def hellaswag(
    checkpoint: Annotated[str, Arg(help="Run folder, checkpoint folder or run name.")],
    limit: Annotated[Optional[int], Opt(help="Score only the first N items (10,042 in all).")] = None,
    source: Annotated[str, Opt(help="Hugging Face dataset id, or a local folder with validation.jsonl in HellaSwag's schema.")] = "Rowan/hellaswag",
    json_output: JsonOpt = False,
) -> None:
    """HellaSwag validation accuracy, completion-style (acc and acc_norm as in build-nanogpt)."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be ≥ 1 (got {limit})")
    from gptscratch.checkpoint import load_checkpoint
    from gptscratch.evaluation.hellaswag import evaluate_hellaswag, load_examples

    device = announce_device()
    loaded = load_checkpoint(checkpoint, device=device)
    examples = load_examples(source, limit=limit)
    log(f"scoring {len(examples)} HellaSwag items with {loaded.path}")
    with progress_callback("hellaswag") as progress:
        result = evaluate_hellaswag(loaded.model, loaded.tokenizer, examples, progress=progress)
    result = {"checkpoint": str(loaded.path), "source": source, **result}
    if json_output:
        print_json(result)
        return
    show(table("HellaSwag (random guessing: 0.25)", ["items", "acc", "acc_norm"],
               [(result["examples"], result["acc"], result["acc_norm"])]))


@app.command("chat")
def chat_accuracy(
    checkpoint: Annotated[str, Arg(help="Run folder, checkpoint folder or run name (a base model or a fine-tuned one).")],
    data: Annotated[str, Opt("--data", "-d", help="builtin-chat (its held-out questions), or a .jsonl/.parquet of conversations ending in the expected answer.")] = "builtin-chat",
    limit: Annotated[Optional[int], Opt(help="Ask only the first N questions.")] = None,
    max_new_tokens: Annotated[int, Opt(help="Longest reply written per question.")] = 16,
    chat_template: Annotated[str, Opt(help="auto, gptscratch, or a Jinja file (as in train sft).")] = "auto",
    json_output: JsonOpt = False,
) -> None:
    """Answer accuracy of a chat model: ask held-out questions, compare the replies with the expected answers."""
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be ≥ 1 (got {limit})")
    if max_new_tokens < 1:
        raise UsageError(f"--max-new-tokens must be ≥ 1 (got {max_new_tokens})")
    from gptscratch.evaluation.chat import evaluate_chat

    device = announce_device()
    with progress_callback("asking") as progress:
        result = evaluate_chat(checkpoint, data, limit=limit, max_new_tokens=max_new_tokens,
                               chat_template=chat_template, device=device, progress=progress)
    if json_output:
        print_json(result)
        return
    if result["chat_tokens_added"]:
        log("the model has no chat tokens: they were added as `train sft` adds them at step 0 (untrained)")
    rows = [(op, f"{v['accuracy']:.3f}", v["questions"]) for op, v in result["by_operation"].items()]
    rows.append(("all", f"{result['accuracy']:.3f}", result["questions"]))
    show(table(f"chat accuracy of {result['checkpoint']} on {data}", ["operation", "accuracy", "questions"], rows))
    for example in result["examples"][:3]:
        log(f"  Q: {example['question']}  expected {example['expected']!r}, replied {example['reply']!r}")


@app.command()
def harness(
    tasks: Annotated[str, Opt("--tasks", "-t", help="Comma-separated lm-eval task names or patterns: hellaswag,arc_easy (list them: lm_eval ls tasks).")],
    checkpoint: Annotated[Optional[str], Opt("--checkpoint", "-c", help="Run folder, checkpoint folder, run name or pretrained name (default: the most recent run).")] = None,
    limit: Annotated[Optional[int], Opt(help="Score only the first N items of each task.")] = None,
    num_fewshot: Annotated[Optional[int], Opt("--num-fewshot", help="Solved examples shown before each item (default: the task's own).")] = None,
    include_path: Annotated[Optional[Path], Opt("--include-path", help="A folder of your own lm-eval task YAML files.")] = None,
    batch_size: Annotated[int, Opt(help="Requests per forward pass.")] = 16,
    dtype: Annotated[str, Opt(help="fp32 (the numbers of eval perplexity / hellaswag), bf16 or auto (as in generate).")] = "fp32",
    json_output: JsonOpt = False,
) -> None:
    """Score a checkpoint on lm-evaluation-harness tasks, through lm-eval's own code (pip install lm-eval)."""
    names = [t.strip() for t in tasks.split(",") if t.strip()]
    if not names:
        raise UsageError("--tasks is empty; name at least one lm-eval task, e.g. --tasks hellaswag")
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be ≥ 1 (got {limit})")
    if num_fewshot is not None and num_fewshot < 0:
        raise UsageError(f"--num-fewshot must be ≥ 0 (got {num_fewshot})")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be ≥ 1 (got {batch_size})")
    from gptscratch.generation.precision import INFERENCE_DTYPES

    if dtype not in INFERENCE_DTYPES:
        raise UsageError(f"unknown --dtype {dtype!r}; choose one of {', '.join(INFERENCE_DTYPES)}")
    if include_path is not None and not include_path.is_dir():
        raise UsageError(f"--include-path {include_path} is not a folder; give the folder holding your task YAML files")
    try:
        from gptscratch.evaluation.harness import evaluate_tasks
    except ModuleNotFoundError as error:
        if (error.name or "").split(".")[0] != "lm_eval":
            raise
        raise UsageError("eval harness needs EleutherAI's lm-eval: pip install 'gptscratch[harness]' "
                         "(or pip install lm-eval)") from None
    import logging

    if SETTINGS.quiet:  # lm-eval speaks through Python logging: only its errors under --quiet
        logging.getLogger("lm_eval").setLevel(logging.ERROR)
    device = announce_device()
    log(f"lm-eval tasks: {', '.join(names)}")
    with progress_callback("lm-eval") as progress:
        result = evaluate_tasks(names, checkpoint=checkpoint, device=device, dtype=dtype, batch_size=batch_size,
                                limit=limit, num_fewshot=num_fewshot, include_path=include_path, progress=progress)
    if json_output:
        print_json(result)
        return
    rows = [(task, metric, value, metrics.get(_stderr_key(metric)), result["samples"].get(task))
            for task, metrics in result["tasks"].items() for metric, value in metrics.items()
            if "_stderr" not in metric]
    show(table(f"lm-eval on {result['checkpoint']} ({result['dtype']})",
               ["task", "metric", "value", "± stderr", "items"], rows))


def _stderr_key(metric: str) -> str:
    """Where lm-eval keeps a metric's standard error: acc → acc_stderr, exact_match,flexible → exact_match_stderr,flexible."""
    name, comma, filter_name = metric.partition(",")
    return f"{name}_stderr{comma}{filter_name}"
