"""Synthetic tasks as documents: `task:NAME[:options]` (the tasks themselves live in gptscratch.tasks).

The held-out test examples come first and go to val (the task rule, splits.py), then the
training examples; both are generated from the task's seed, so the order is the same on every run.
The "char" tokenizer (the default) is built over the tasks' fixed alphabet, not from the text.
"""

from __future__ import annotations

from collections.abc import Iterator

from gptscratch.data.sources.base import Doc, Source
from gptscratch.tokenizers import CharTokenizer, Tokenizer, get_tokenizer


class TaskSource(Source):
    """A synthetic task: the held-out test examples (val) first, then the training examples."""

    kind = "task"
    default_tokenizer = "char"

    def __init__(self, source: str):
        from gptscratch.tasks import parse_task

        self.task = parse_task(source)
        self.canonical = self.task.source
        self.stem = self.task.stem
        self.options = {}

    def total_bytes(self) -> int:
        average = sum(len(e.text) for e in self.task.test_set()) / len(self.task.test_set())
        return int(average * (len(self.task.test_set()) + int(self.task.options["train"])))

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        test = self.task.test_set()
        examples = [(example, "val") for example in test]
        index = 0
        for example, split in examples:
            if index >= start:
                yield Doc(index, f"test-{index}", example.text, split)
            index += 1
        for number, example in enumerate(self.task.train_examples()):
            if index >= start:
                yield Doc(index, f"train-{number}", example.text, "train")
            index += 1

    def make_tokenizer(self, name: str) -> Tokenizer:
        from gptscratch.tasks import TASK_ALPHABET

        return CharTokenizer(TASK_ALPHABET) if name == "char" else get_tokenizer(name)
