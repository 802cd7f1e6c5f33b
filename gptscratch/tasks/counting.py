"""Counting: count up from one digit to another, wrapping around the digit range.

    count 3 7=34567         from 3 to 7
    count 8 1=8901          from 8, past 9, round to 1 (digits 0-9)

Option `digits` (size of the digit range, 2..10). The space is digits^2 examples (100 by
default), so the held-out test set is 20% of it: the model must count between two digits it
has never seen paired. Two rules suffice -- the successor of a digit (learned from every
example) and stopping right after writing the end digit (an attention head that compares the
last output with the prompt's second digit) -- which a 2-layer model learns in seconds.
"""

from __future__ import annotations

import random

from gptscratch.errors import UsageError
from gptscratch.tasks.base import Example, Task


class Counting(Task):
    name = "counting"
    description = "count up from one digit to another, wrapping (count 8 1=8901)"
    defaults = {"digits": 10}

    def validate(self) -> None:
        if not 2 <= int(self.options["digits"]) <= 10:
            raise UsageError(f"counting: digits must be 2..10 (got {self.options['digits']})")

    def space_size(self) -> int:
        return int(self.options["digits"]) ** 2

    def make(self, start: int, end: int) -> Example:
        digits = int(self.options["digits"])
        steps = (end - start) % digits + 1
        answer = "".join(str((start + i) % digits) for i in range(steps))
        return Example(f"count {start} {end}=", answer, "count")

    def example(self, rng: random.Random) -> Example:
        digits = int(self.options["digits"])
        return self.make(rng.randrange(digits), rng.randrange(digits))

    def enumerate_all(self) -> list[Example]:
        digits = int(self.options["digits"])
        return [self.make(start, end) for start in range(digits) for end in range(digits)]

    @property
    def operations(self) -> list[str]:
        return ["count"]
