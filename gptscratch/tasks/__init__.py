"""Synthetic tasks a tiny model masters in seconds: the first thing to train on.

    task:counting                   count 7 4=7890
    task:digit-ops                  max 3825=8   (first, second, last, max, min)
    task:digit-ops:args=6,digits=5  options after a second ':' (name=value, comma-separated)

`gptscratch data prepare task:NAME` (or `train --data task:NAME`) writes the training
examples and the held-out test set as shards (train / val split); `gptscratch eval accuracy`
scores a checkpoint on the test set. Definitions: base.py (shared), one module per task.
"""

from __future__ import annotations

from gptscratch.errors import UsageError
from gptscratch.tasks.base import TASK_ALPHABET, Example, Task
from gptscratch.tasks.counting import Counting
from gptscratch.tasks.digit_ops import DigitOps

TASK_PREFIX = "task:"
TASKS: dict[str, type[Task]] = {Counting.name: Counting, DigitOps.name: DigitOps}


def is_task_source(source: str) -> bool:
    return source.strip().lower().startswith(TASK_PREFIX)


def parse_task(source: str) -> Task:
    """`task:NAME[:key=value,...]` -> a Task; unknown names or options raise UsageError."""
    body = source.strip()
    body = body[len(TASK_PREFIX):] if body.lower().startswith(TASK_PREFIX) else body
    name, _, option_text = body.partition(":")
    name = name.strip().lower()
    if name not in TASKS:
        raise UsageError(f"unknown task {name!r}; choose one of: {', '.join(TASK_PREFIX + t for t in TASKS)}")
    options = {}
    for item in filter(None, (part.strip() for part in option_text.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"task option {item!r} needs the form name=value, e.g. {TASK_PREFIX}{name}:seed=1")
        options[key.strip()] = value.strip()
    return TASKS[name](options)


__all__ = ["TASKS", "TASK_ALPHABET", "TASK_PREFIX", "Example", "Task", "is_task_source", "parse_task"]
