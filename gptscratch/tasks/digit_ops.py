"""Digit operations: read a list of digits, answer with one of them.

    first 3825=3    second 3825=8    last 3825=5    max 3825=8    min 3825=2

Options: `args` (digits per list, 2..12), `digits` (range 0..digits-1, 2..10), `ops`
(operations joined by '+', default first+second+last+max+min). The space is
len(ops) x digits^args examples (50,000 by default). First/second/last need one attention
head that looks at a fixed offset; max/min need comparing every argument -- the harder half.
"""

from __future__ import annotations

import random

from gptscratch.errors import UsageError
from gptscratch.tasks.base import Example, Task

OPERATIONS = {
    "first": lambda values: values[0],
    "second": lambda values: values[1],
    "last": lambda values: values[-1],
    "max": max,
    "min": min,
}


class DigitOps(Task):
    name = "digit-ops"
    description = "first/second/last/max/min of a list of digits (max 3825=8)"
    defaults = {"args": 4, "digits": 10, "ops": "+".join(OPERATIONS), "train": 50_000}

    def validate(self) -> None:
        if not 2 <= int(self.options["args"]) <= 12:
            raise UsageError(f"digit-ops: args must be 2..12 (got {self.options['args']})")
        if not 2 <= int(self.options["digits"]) <= 10:
            raise UsageError(f"digit-ops: digits must be 2..10 (got {self.options['digits']})")
        unknown = [op for op in self.operations if op not in OPERATIONS]
        if unknown or not self.operations:
            raise UsageError(f"digit-ops: unknown operation(s) {unknown}; choose from {'+'.join(OPERATIONS)}")

    @property
    def operations(self) -> list[str]:
        return [op for op in str(self.options["ops"]).split("+") if op]

    def space_size(self) -> int:
        return len(self.operations) * int(self.options["digits"]) ** int(self.options["args"])

    def make(self, operation: str, values: list[int]) -> Example:
        answer = OPERATIONS[operation](values)
        return Example(f"{operation} {''.join(map(str, values))}=", str(answer), operation)

    def example(self, rng: random.Random) -> Example:
        digits, args = int(self.options["digits"]), int(self.options["args"])
        return self.make(rng.choice(self.operations), [rng.randrange(digits) for _ in range(args)])

    def enumerate_all(self) -> list[Example]:
        import itertools

        digits, args = int(self.options["digits"]), int(self.options["args"])
        return [self.make(op, list(values)) for op in self.operations
                for values in itertools.product(range(digits), repeat=args)]
