"""Where gptscratch keeps its files.

Everything lives under one root so that a single environment variable relocates it all
(tests point it at a temporary directory):

    cache_root()        $GPTSCRATCH_HOME, else the platform cache dir (e.g. ~/.cache/gptscratch)
    data_root()         cache_root()/data        prepared token datasets
    runs_root()         cache_root()/runs        training runs (checkpoints, logs)
    pretrained_root()   cache_root()/pretrained  imported pretrained weights
    tokenizers_root()   cache_root()/tokenizers  tokenizers trained by `gptscratch data train-tokenizer`

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


def tokenizers_root() -> Path:
    """Directory holding trained tokenizers."""
    return cache_root() / "tokenizers"


def check_png_destination(path, flag: str) -> Path:
    """`path` as a Path when a PNG may be written there, else a UsageError naming `flag` and the fix. Refused:
    a name not ending in .png (`--out RUN/latest/model.safetensors` would replace weights with an image), an
    existing folder, and a folder that does not exist (a typo would otherwise create a stray tree). Callers
    check before any work, so a bad path costs nothing."""
    return check_file_destination(path, flag, ".png", "a PNG image", "plot.png")


def check_html_destination(path, flag: str) -> Path:
    """`--html`: the same rules as check_png_destination, for a name ending in .html."""
    return check_file_destination(path, flag, ".html", "one self-contained HTML page", "view.html")


def check_file_destination(path, flag: str, suffix: str, what: str, example: str) -> Path:
    from gptscratch.errors import UsageError

    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{flag} {path} is a folder; give a file name ending in {suffix}, e.g. {path / example}")
    if path.suffix.lower() != suffix:
        raise UsageError(f"{flag} writes {what}; give a file name ending in {suffix} (got {path.name})")
    if not path.parent.is_dir():
        raise UsageError(f"folder {path.parent} does not exist; create it first or choose another {flag}")
    return path
