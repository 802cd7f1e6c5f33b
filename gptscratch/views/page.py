"""Render a view as ONE self-contained HTML file: styles, scripts and data inlined.

Why one file: a page that loads scripts from a CDN breaks offline, behind a firewall and years later; a page
split into several files breaks when one is moved. Everything the page needs is inside it, so it can be mailed,
committed next to a notebook or opened from a USB stick. Plain JavaScript, no framework and no build step: the
scripts in assets/ are what runs, readable as they are.

The data is embedded as JSON in a `<script type="application/json">` element. JSON inside HTML needs one
precaution: the text `</script>` (or `<!--`) inside a string would end the element early, so every `<`, `>` and
`&` is written as a \\u escape, which JSON parsers read back as the same character.

Cost: the page is the size of its data (an attention view stores layers × heads × T(T+1)/2 weights, rounded to
4 decimals: GPT-2 small on 40 tokens is ~0.8 MB).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..atomic import atomic_write_text
from ..jsonutil import to_json

VIEWS = ("attention", "logit-lens", "induction", "report")
ASSETS = resources.files("gptscratch.views") / "assets"


def _asset(name: str) -> str:
    return (ASSETS / name).read_text(encoding="utf-8")


def embed_json(data) -> str:
    """`data` as JSON that is safe inside a <script> element (no `<`, `>` or `&` characters). The JSON is
    `--json`'s (gptscratch.jsonutil): NaN and infinity become null, which the views show as a blank."""
    text = to_json(data)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def render_page(view: str, title: str, data: dict) -> str:
    """The HTML text of `view` (one of VIEWS) showing `data` (the command's --json dictionary, plus extras)."""
    from jinja2 import Environment, select_autoescape

    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {', '.join(VIEWS)}")
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = environment.from_string(_asset("page.html.j2"))
    from .. import __version__

    # Scripts and styles are ours and trusted: inserted verbatim (|safe); the title is escaped; the data is
    # escaped by embed_json. A script's text cannot contain "</script" (checked here, not hoped).
    scripts = [_asset("common.js"), _asset(f"{view.replace('-', '_')}.js")]
    if any("</script" in s.lower() for s in scripts):
        raise ValueError("a view script contains '</script'; it would end the element early")
    return template.render(title=title, view=view, style=_asset("views.css"), scripts=scripts,
                           data=embed_json(data), version=__version__)


def write_page(path, view: str, title: str, data: dict) -> Path:
    """Render and write atomically to `path` (a .html file); returns the path."""
    path = Path(path)
    atomic_write_text(path, render_page(view, title, data))
    return path


def causal_rows(matrix, digits: int = 4) -> list[list[float]]:
    """A (T, T) attention pattern (nested lists) → rows 0..T-1 with q + 1 weights each, rounded to `digits`.

    A causal pattern is zero above the diagonal, so storing only the lower triangle halves the page; 4 decimals
    keep every weight within 5e-5 of the model's while the page shows 3."""
    return [[round(float(v), digits) for v in row[:q + 1]] for q, row in enumerate(matrix)]
