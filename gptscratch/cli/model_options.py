"""Every ModelConfig field as a `gptscratch train` option, derived from the dataclass.

gptscratch/model/config.py is the one source of truth for the model's decisions: each field becomes a flag
named after it (`norm_placement` → `--norm-placement`, a bool `bias` → `--bias/--no-bias`), typed by its
annotation, limited to config.CHOICES where it names one of a set, and helped by the docstring written under the
field. A field added to ModelConfig is a flag with no edit here. `vocab_size` is not a flag: the tokenizer sets it.

    @model_options
    def train(..., model: dict): ...      # model = {field: value or None (not given)}
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import types
import typing
from typing import Annotated, Literal, Optional

import typer

from gptscratch.model.config import CHOICES, ModelConfig, field_docs

NOT_FLAGS = ("vocab_size",)   # set by the tokenizer, not by the user
PANEL = "Model (every ModelConfig field; default: the --size shape)"


def model_fields() -> list[dataclasses.Field]:
    """The ModelConfig fields offered as flags, in the dataclass's order."""
    return [f for f in dataclasses.fields(ModelConfig) if f.name not in NOT_FLAGS]


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def _option(field: dataclasses.Field, hint) -> inspect.Parameter:
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] \
        if typing.get_origin(hint) in (typing.Union, types.UnionType) else [hint]
    kind = kinds[0]
    help_text = field_docs().get(field.name, "")
    default = "4 × d_model" if field.name == "d_ff" else field.default
    if field.name in CHOICES:
        kind = Literal[CHOICES[field.name]]
    decls = [f"{flag_name(field.name)}/--no-{field.name.replace('_', '-')}"] if kind is bool else \
        [flag_name(field.name)]
    option = typer.Option(*decls, help=f"{help_text} [model default: {default}]", rich_help_panel=PANEL,
                          show_default=False)
    return inspect.Parameter(field.name, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=Annotated[Optional[kind], option])


def model_options(command):
    """Decorator: add one option per ModelConfig field to `command`, which receives them as `model` (a dict of
    field → value, None where the flag was not given)."""
    hints = typing.get_type_hints(ModelConfig)
    added = [_option(f, hints[f.name]) for f in model_fields()]
    names = [p.name for p in added]
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "model"]

    @functools.wraps(command)
    def with_model(*args, **kwargs):
        model = {name: kwargs.pop(name, None) for name in names}
        return command(*args, model=model, **kwargs)

    with_model.__signature__ = signature.replace(parameters=own + added)
    return with_model
