"""Terminal output for the CLI: data on stdout, logs and progress on stderr.

The library never prints; it hands progress events (plain dicts) to a callback. This module
turns them into output:

- `log(msg)`: one line on stderr, silenced by `--quiet`.
- `announce_device()`: resolve `--device` and log "device: <name>" (what every command that computes starts with).
- `print_json(obj)`: compact one-line JSON on stdout (machine-readable `--json` output).
- `table(...)` + `show(...)`: human-readable tables on stdout.
- `progress_callback(description)`: context manager yielding `callback(event: dict)`.
  Recognised event keys: "total", "completed" (absolute), "advance" (relative), "unit",
  "message" (printed as its own line); every other key is a statistic shown next to the bar
  (e.g. {"completed": 120, "total": 1000, "loss": 2.31}). On a terminal this is a live rich
  progress bar; otherwise (pipes, CI logs) a plain line every `interval` seconds and at the end.

Long lines are never wrapped (`soft_wrap=True`): error and log messages stay one line.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gptscratch.cli.settings import SETTINGS
from gptscratch.jsonutil import to_json

# rich resolves sys.stdout / sys.stderr at print time, so test runners that swap the
# streams still capture this output.
stderr = Console(stderr=True, highlight=False)
stdout = Console(highlight=False)

ProgressEvent = dict[str, Any]
_CONTROL_KEYS = {"total", "completed", "advance", "unit", "message", "description"}


def log(msg: str, *, markup: bool = False) -> None:
    """Print one line to stderr unless --quiet. Markup is off so "[x]" in paths survives."""
    if not SETTINGS.quiet:
        stderr.print(msg, markup=markup, soft_wrap=True)


def announce_device() -> str:
    """Resolve `SETTINGS.device` to a concrete device, log "device: <name>" to stderr, return it.

    Raises gptscratch.errors.UsageError when the requested device is unavailable. Imports
    torch (through resolve_device) unless the device is "cpu", so call it inside commands.
    """
    from gptscratch.device import resolve_device

    device = resolve_device(SETTINGS.device)
    log(f"device: {device}")
    return device


def warn(msg: str) -> None:
    """Print "warning: <msg>" to stderr, even with --quiet (warnings need attention)."""
    stderr.print(f"warning: {msg}", style="yellow", markup=False, soft_wrap=True)


def print_error(msg: str) -> None:
    """Print "error: <msg>" to stderr as a single plain line (no wrapping, no colour codes)."""
    sys.stderr.write(f"error: {msg}\n")
    sys.stderr.flush()


def print_json(obj: Any) -> None:
    """Write `obj` as one line of compact JSON to stdout (never affected by --quiet)."""
    sys.stdout.write(to_json(obj) + "\n")
    sys.stdout.flush()


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]], markup: bool = False) -> Table:
    """Build a rich Table; cells are converted with str(). Print it with `show`.

    Cells and title are literal text — a path, a run name or generated text holding "[...]" is shown as it is,
    never read as rich markup — unless `markup` (the caller then escapes its text: `markup_table`)."""
    literal = (lambda value: value) if markup else Text
    result = Table(title=literal(title) if title is not None else None, title_justify="left", header_style="bold")
    for column in columns:
        result.add_column(literal(column), overflow="fold")
    for row in rows:
        result.add_row(*(literal(_format_cell(cell)) for cell in row))
    return result


def markup_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> Table:
    """`table` whose cells carry rich markup (styles, colours); every piece of text in them must be escaped."""
    return table(title, columns, rows, markup=True)


def show(renderable: Any) -> None:
    """Print a table (or any rich renderable) to stdout.

    Into a pipe or a file, rich would assume 80 columns and fold long cells (run names, paths) across lines,
    which breaks `| grep`; there the table gets the width it needs instead."""
    if stdout.is_terminal:
        stdout.print(renderable)
        return
    from rich.measure import Measurement

    needed = Measurement.get(stdout, stdout.options.update(width=10_000), renderable).maximum
    Console(highlight=False, width=max(stdout.width, min(needed, 10_000))).print(renderable)


def _format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def format_number(value: Any) -> str:
    """Short human form: 4 significant digits for floats, thousands separators for ints."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def format_stats(event: ProgressEvent) -> str:
    """`key=value` pairs for every non-control key of a progress event."""
    return " ".join(
        f"{key}={format_number(value)}" for key, value in event.items() if key not in _CONTROL_KEYS
    )


@contextmanager
def progress_callback(
    description: str, *, interval: float = 5.0
) -> Iterator[Callable[[ProgressEvent], None]]:
    """Yield a callback that renders library progress events on stderr (see module docstring)."""
    if SETTINGS.quiet:
        yield lambda event: None
    elif stderr.is_terminal:
        with _rich_progress(description) as callback:
            yield callback
    else:
        yield _PlainProgress(description, interval)


@contextmanager
def _rich_progress(description: str) -> Iterator[Callable[[ProgressEvent], None]]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[stats]}"),
        console=stderr,
        transient=False,
    )
    task = progress.add_task(description, total=None, unit="", stats="")

    def callback(event: ProgressEvent) -> None:
        if "message" in event:
            progress.console.print(str(event["message"]), markup=False, soft_wrap=True)
        updates: dict[str, Any] = {}
        for key in ("total", "completed", "advance", "description"):
            if key in event:
                updates[key] = event[key]
        if "unit" in event:
            updates["unit"] = str(event["unit"])
        stats = format_stats(event)
        if stats:
            updates["stats"] = stats
        progress.update(task, **updates)

    with progress:
        yield callback


class _PlainProgress:
    """Non-TTY rendering: a line on the first event, every `interval` seconds, and at 100%."""

    def __init__(self, description: str, interval: float) -> None:
        self.description = description
        self.interval = interval
        self.total: float | None = None
        self.completed: float = 0
        self.unit = ""
        self.stats = ""
        self._last_print: float | None = None
        self._finish_printed = False

    def __call__(self, event: ProgressEvent) -> None:
        if "message" in event:
            log(str(event["message"]))
        self.total = event.get("total", self.total)
        self.unit = str(event.get("unit", self.unit))
        if "completed" in event:
            self.completed = event["completed"]
        self.completed += event.get("advance", 0)
        self.stats = format_stats(event) or self.stats
        has_progress = any(key in event for key in ("completed", "advance", "total"))
        finished = self.total is not None and self.completed >= self.total
        now = time.monotonic()
        due = self._last_print is None or now - self._last_print >= self.interval
        if has_progress and (due or (finished and not self._finish_printed)):
            self._last_print = now
            self._finish_printed = finished
            log(self.line())

    def line(self) -> str:
        count = format_number(self.completed)
        if self.total is not None:
            count += f"/{format_number(self.total)}"
        parts = [f"{self.description}:", count, self.unit, self.stats]
        return " ".join(part for part in parts if part)
