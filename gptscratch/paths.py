"""Where gptscratch keeps its files.

Everything lives under one root so that a single environment variable relocates it all
(tests point it at a temporary directory):

    cache_root()        $GPTSCRATCH_HOME, else the platform cache dir (e.g. ~/.cache/gptscratch)
    data_root()         cache_root()/data        prepared token datasets
    runs_root()         cache_root()/runs        training runs (checkpoints, logs)
    pretrained_root()   cache_root()/pretrained  imported pretrained weights

These functions create nothing; code that writes is responsible for `mkdir(parents=True)`.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_HOME = "GPTSCRATCH_HOME"


def cache_root() -> Path:
    """Root directory for all gptscratch data ($GPTSCRATCH_HOME wins when set and non-empty)."""
    override = os.environ.get(ENV_HOME, "").strip()
    if override:
        return Path(override).expanduser().resolve()
    # Imported lazily: platformdirs is light, but only needed when no override is set.
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("gptscratch", appauthor=False))


def data_root() -> Path:
    """Directory holding prepared datasets."""
    return cache_root() / "data"


def runs_root() -> Path:
    """Directory holding training runs."""
    return cache_root() / "runs"


def pretrained_root() -> Path:
    """Directory holding imported pretrained weights."""
    return cache_root() / "pretrained"
