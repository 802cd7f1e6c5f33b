"""An exercise's starting file, made from its solution: the same module with every function to write emptied.

Why generated and not kept as a second file: the stub and the solution must ask for exactly the same functions,
with the same signatures and the same docstrings (formula, shapes, gptscratch's reference). Written twice, they
drift; made from the solution, they cannot. For each function the learner writes, the stub keeps the `def` line(s)
and the docstring and replaces the body with `raise NotImplementedError`; everything else — the module docstring
(less its "a solution" in the title), the imports — is kept as it is.
"""

from __future__ import annotations

import ast
import re


def make_stub(solution: str, functions: tuple[str, ...]) -> str:
    """The stub's source text, from the solution's source text and the names of the functions to empty."""
    tree = ast.parse(solution)
    lines = solution.splitlines(keepends=True)
    found = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    missing = [name for name in functions if name not in found]
    if missing:
        raise ValueError(f"the solution defines no {', '.join(missing)}")
    for name in sorted(functions, key=lambda n: found[n].lineno, reverse=True):   # bottom up: line numbers hold
        node = found[name]
        first = node.body[0]
        if not (isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)):
            raise ValueError(f"{name} has no docstring: a stub without one would not say what to write")
        indent = " " * first.col_offset
        lines[first.end_lineno:node.end_lineno] = [f"{indent}raise NotImplementedError\n"]
    # The title says "Exercise NN — topic (lesson): a solution."; the stub's says "Exercise NN — topic (lesson)."
    return re.sub(r":\s+a\s+solution\.", ".", "".join(lines), count=1)
