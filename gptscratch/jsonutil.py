"""JSON as gptscratch writes it everywhere (`--json` output, the data inside `--html` pages): strictly valid, one
line, UTF-8 kept. NaN and infinity become null (they are not JSON and break strict parsers); paths, numpy and
torch scalars, tuples and sets are converted instead of failing. Standard library only."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def json_default(obj: Any) -> Any:
    """Serialise the few non-JSON types commands return (paths, numpy scalars, tuples...)."""
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item"):  # numpy / torch scalars, without importing either
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def finite(obj: Any) -> Any:
    """Replace NaN/inf floats by None, in nested dicts and lists too."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {key: finite(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(value) for value in obj]
    return obj


def to_json(obj: Any) -> str:
    """Compact, strictly valid JSON on one line (UTF-8 kept; NaN/inf become null)."""
    return json.dumps(finite(obj), separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                      default=lambda value: finite(json_default(value)))
