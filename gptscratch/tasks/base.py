"""What a synthetic task is: examples (prompt -> answer), a fixed held-out test set, options.

An example is one line of text `<prompt><answer>`, e.g. `max 3825=8`: the prompt ends with
"=", the answer is everything after it. In the training stream every example is one document
(preceded by the end-of-text id), so a model learns to write the answer after "=" and then
end the document. Exact-match accuracy (gptscratch.evaluation.accuracy) greedily decodes
after each test prompt until end-of-text and compares the text with the answer.

Held-out test set: `test` distinct examples drawn with their own seed (or 20% of the whole
example space when the space is small); training examples are drawn with `seed` and never
include a test prompt, so accuracy measures generalisation, not memorisation. Both are fully
determined by the options, so the test set is the same on every machine and every run.

Tasks share one small alphabet (digits, lowercase letters, space, '=' and ','): their
tokenizer is the char tokenizer over it (39 characters + end-of-text = 40 ids), whichever task it is.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

from gptscratch.errors import UsageError

TASK_ALPHABET = tuple(sorted(set("0123456789 =,abcdefghijklmnopqrstuvwxyz")))
COMMON_DEFAULTS = {"train": 20_000, "test": 500, "seed": 0}
_TEST_SEED_OFFSET = 1_000_003  # test draws use another stream than training draws


@dataclass(frozen=True)
class Example:
    prompt: str
    answer: str
    operation: str

    @property
    def text(self) -> str:
        return self.prompt + self.answer


class Task:
    """A task family; subclasses define `name`, `defaults`, `space_size`, `example`, `enumerate_all`."""

    name: str = ""
    description: str = ""
    defaults: dict[str, int | str] = {}

    def __init__(self, options: dict[str, str] | None = None):
        merged = {**COMMON_DEFAULTS, **self.defaults}
        self.options: dict[str, int | str] = dict(merged)
        for key, value in (options or {}).items():
            if key not in merged:
                raise UsageError(
                    f"task {self.name} has no option {key!r}; options: "
                    + ", ".join(f"{k}={v}" for k, v in merged.items())
                )
            if isinstance(merged[key], int):
                try:
                    self.options[key] = int(value)
                except ValueError:
                    raise UsageError(f"task option {key}={value!r} must be an integer, e.g. {key}={merged[key]}") from None
            else:
                self.options[key] = value
        for key in ("train", "test"):
            if int(self.options[key]) < 1:
                raise UsageError(f"task option {key} must be at least 1 (got {self.options[key]})")
        self.validate()

    # -- to define in subclasses ------------------------------------------------------------------
    def validate(self) -> None:
        """Raise UsageError for impossible option values."""

    def space_size(self) -> int:
        raise NotImplementedError

    def example(self, rng: random.Random) -> Example:
        """One uniformly drawn example."""
        raise NotImplementedError

    def enumerate_all(self) -> list[Example]:
        """Every example (only called when the space is small)."""
        raise NotImplementedError

    # -- shared -----------------------------------------------------------------------------------
    @property
    def source(self) -> str:
        """Canonical source string: `task:NAME` plus the options that differ from the defaults."""
        merged = {**COMMON_DEFAULTS, **self.defaults}
        changed = [f"{k}={self.options[k]}" for k in sorted(self.options) if self.options[k] != merged[k]]
        return f"task:{self.name}" + (":" + ",".join(changed) if changed else "")

    @property
    def stem(self) -> str:
        return self.source.replace("task:", "task-").replace(":", "-").replace(",", "-").replace("=", "").replace("+", "_")

    @property
    def operations(self) -> list[str]:
        return [self.name]

    def test_set(self) -> list[Example]:
        """The fixed held-out examples, sorted by prompt (see module docstring)."""
        wanted = int(self.options["test"])
        size = self.space_size()
        if size <= 5 * wanted:  # small space: hold out 20% of everything, at least one example
            everything = self.enumerate_all()
            rng = random.Random(int(self.options["seed"]) + _TEST_SEED_OFFSET)
            chosen = rng.sample(everything, max(1, len(everything) // 5))
        else:
            rng = random.Random(int(self.options["seed"]) + _TEST_SEED_OFFSET)
            by_prompt: dict[str, Example] = {}
            while len(by_prompt) < wanted:
                example = self.example(rng)
                by_prompt.setdefault(example.prompt, example)
            chosen = list(by_prompt.values())
        return sorted(chosen, key=lambda e: e.prompt)

    def train_examples(self) -> Iterator[Example]:
        """`train` examples drawn with `seed`, never one of the test prompts."""
        held_out = {example.prompt for example in self.test_set()}
        if len(held_out) >= self.space_size():
            raise UsageError(f"task {self.source} has no examples left for training; raise digits/args or lower test")
        rng = random.Random(int(self.options["seed"]))
        produced = 0
        while produced < int(self.options["train"]):
            example = self.example(rng)
            if example.prompt not in held_out:
                produced += 1
                yield example
