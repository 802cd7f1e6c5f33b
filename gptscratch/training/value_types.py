"""Type checks for training settings that arrive untyped: recipe files (TOML/YAML) and library callers.

Typer converts command-line flags, but a recipe can say `lr = "abc"` or `batch_size = true`, and every range
check in TrainConfig compares numbers. type_problem() checks a value against a field's annotation (int,
float, bool, str, dict, or X | None) and returns the words of a one-line error ("must be a number, got 'abc'").
"""

from __future__ import annotations

import math
import types
import typing


def _model_field_types() -> dict[str, object]:
    """The ModelConfig fields a recipe or a flag may set, with their types — read from the dataclass itself
    (gptscratch.model.config imports no torch), so a new field is settable with no edit here."""
    from ..model.config import ModelConfig

    return {name: hint for name, hint in typing.get_type_hints(ModelConfig).items() if name != "vocab_size"}


MODEL_FIELD_TYPES: dict[str, object] = _model_field_types()

_TYPE_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", dict: "a table"}


def type_problem(value, hint) -> str | None:
    """None if `value` fits the type `hint` (int, float, bool, str, dict, or X | None), else 'must be ...'.

    bool is not accepted as a number (True is an int in Python, but `lr = true` is a mistake), and an int is
    accepted where a float is expected (`lr = 1`)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        kinds = [k for k in typing.get_args(hint) if k is not type(None)]
        optional = True
    else:
        kinds, optional = [hint], False
    if value is None:
        return None if optional else f"must be {' or '.join(_TYPE_WORDS.get(k, str(k)) for k in kinds)}, got nothing"
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return None
        if kind in (int, float) and isinstance(value, (float, int) if kind is float else int) \
                and not isinstance(value, bool):
            return None
        if kind in (str, dict) and isinstance(value, kind):
            return None
    return f"must be {' or '.join(_TYPE_WORDS.get(k, str(k)) for k in kinds)}, got {value!r}"


def coerce_number(value, hint):
    """YAML 1.1 (PyYAML) reads `lr: 3e-3` as the *string* '3e-3' (it wants a dot: 3.0e-3): accept a string
    that reads as a number where a float is expected."""
    kinds = typing.get_args(hint) or (hint,)
    if float in kinds and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def value_problem(value, hint) -> str | None:
    """type_problem, then finiteness: nan passes every comparison (nan <= 0 is False) and inf trains until the
    loss is nan, so a float setting must be finite."""
    problem = type_problem(value, hint)
    if problem is None and isinstance(value, float) and not math.isfinite(value):
        problem = f"must be a finite number, got {value}"
    return problem
