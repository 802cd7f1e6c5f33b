"""`gptscratch eval accuracy CHECKPOINT`: exact-match accuracy on a synthetic task's test set.

    gptscratch train --data task:digit-ops --tokenizer char --size tiny --max-time 1m
    gptscratch eval accuracy RUN                       # task read from the run's dataset
    gptscratch eval accuracy RUN --task task:digit-ops:args=5 --json

The command function is registered in the `eval` group (`eval_app.command("accuracy")(accuracy)`);
the work is in gptscratch.evaluation.accuracy, imported inside the command (torch).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gptscratch.cli.render import announce_device, log, print_json, progress_callback, show, table


def accuracy(
    checkpoint: Annotated[
        Optional[str],  # noqa: UP007 - typer inspects the annotation at runtime
        typer.Argument(help="Run folder, run name or checkpoint folder (default: the latest run)."),
    ] = None,
    task: Annotated[
        Optional[str],  # noqa: UP007
        typer.Option("--task", help="task:counting, task:digit-ops[:options] (default: the task it was trained on)."),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP007
        typer.Option("--limit", min=1, help="Score only the first N test examples."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as one line of JSON.")] = False,
) -> None:
    """Exact-match accuracy on a task's held-out test set, overall and per operation."""
    from gptscratch.evaluation.accuracy import evaluate_accuracy

    device = announce_device()
    with progress_callback("scoring") as progress:
        result = evaluate_accuracy(checkpoint, task=task, device=device, limit=limit, progress=progress)
    if json_output:
        print_json(result)
        return
    rows = [[op, r["examples"], r["correct"], f"{100 * r['accuracy']:.1f}%"] for op, r in result["by_operation"].items()]
    rows.append(["all", result["examples"], result["correct"], f"{100 * result['accuracy']:.1f}%"])
    show(table(f"{result['task']} — {result['checkpoint']}", ["operation", "examples", "correct", "accuracy"], rows))
    for failure in result["failures"][:3]:
        log(f"wrong: {failure['prompt']}{failure['got']!r} (expected {failure['expected']!r})")
