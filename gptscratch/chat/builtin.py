"""builtin-chat: an offline conversation set made from the digit-operations task (gptscratch/tasks/digit_ops.py).

    user: What is the maximum of 3 8 1 5?          assistant: 8
    user: Which digit comes last in 7 0 2 9?       assistant: 9

Each task example (`max 3815=8`) becomes one question, worded by one of a few phrasings per operation (drawn with
the task's seed), so the model must read a sentence rather than a fixed code. Splits: train = the task's training
examples, test = its fixed held-out set (no test list of digits ever appears in training), so `gptscratch eval
chat` measures answers to questions never seen. Everything is determined by the options: the same set on every
machine. Options, as for tasks: `builtin-chat:train=5000,test=200,ops=max+min`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

PHRASINGS = {
    "first": ("What is the first digit of {}?", "Which digit comes first in {}?", "Tell me the first one: {}"),
    "second": ("What is the second digit of {}?", "Which digit comes second in {}?", "Second one of {}?"),
    "last": ("What is the last digit of {}?", "Which digit comes last in {}?", "Tell me the last one: {}"),
    "max": ("What is the maximum of {}?", "Which is the largest of {}?", "What is the biggest digit in {}?"),
    "min": ("What is the minimum of {}?", "Which is the smallest of {}?", "What is the lowest digit in {}?"),
}


def _task(options: str):
    from gptscratch.tasks.digit_ops import DigitOps

    parsed = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        parsed[key.strip()] = value.strip()
    return DigitOps({"train": "20000", **parsed})


def question(example, rng: random.Random) -> list[dict]:
    """The conversation of one task example (`max 3815=` → "What is the maximum of 3 8 1 5?" / "8")."""
    operation, digits = example.prompt.rstrip("=").split(" ")
    text = rng.choice(PHRASINGS[operation]).format(" ".join(digits))
    return [{"role": "user", "content": text}, {"role": "assistant", "content": example.answer}]


def operation_of(question_text: str) -> str | None:
    """Which operation a builtin-chat question asks for (None for any other text)."""
    for operation, phrasings in PHRASINGS.items():
        if any(question_text.startswith(p.split("{}")[0]) for p in phrasings):
            return operation
    return None


def builtin_conversations(split: str = "train", options: str = "") -> Iterator[list[dict]]:
    """The conversations of a split: train (the task's training examples) or val/test (its held-out set)."""
    task = _task(options)
    rng = random.Random(int(task.options["seed"]) + (0 if split == "train" else 1))
    if split == "train":
        examples = task.train_examples()
    else:  # the held-out set is sorted by prompt; shuffled (seeded) so that any first N mixes the operations
        held_out = task.test_set()
        random.Random(int(task.options["seed"])).shuffle(held_out)
        examples = iter(held_out)
    for example in examples:
        yield question(example, rng)
