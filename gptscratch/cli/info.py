"""`gptscratch info`: versions, the device that would be used, and where files live.

The first thing to run when something misbehaves: it shows which torch/tiktoken/datasets
are installed, what `--device` (or $GPTSCRATCH_DEVICE) resolves to on this machine, and the
cache/data/runs folders ($GPTSCRATCH_HOME relocates them all).
"""

from __future__ import annotations

import platform
from importlib import metadata
from typing import Annotated, Any

import typer

from gptscratch import __version__
from gptscratch.cli.render import print_json, show, table
from gptscratch.cli.settings import SETTINGS


def _installed_version(package: str) -> str | None:
    # Package metadata instead of importing: `import datasets` alone costs ~1 s.
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def collect_info() -> dict[str, Any]:
    """Everything `info` reports, as a JSON-ready dict. Raises UsageError for a bad --device."""
    from gptscratch import paths
    from gptscratch.device import resolve_device

    resolved = resolve_device(SETTINGS.device)
    return {
        "versions": {
            "gptscratch": __version__,
            "python": platform.python_version(),
            "torch": _installed_version("torch"),
            "tiktoken": _installed_version("tiktoken"),
            "datasets": _installed_version("datasets"),
        },
        "platform": platform.platform(),
        "device": resolved,
        "device_requested": SETTINGS.device,
        "paths": {
            "cache": str(paths.cache_root()),
            "data": str(paths.data_root()),
            "runs": str(paths.runs_root()),
            "pretrained": str(paths.pretrained_root()),
        },
    }


def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print one line of JSON.")] = False,
) -> None:
    """Show versions, the device that would be used, and the cache/data/runs folders."""
    report = collect_info()
    if as_json:
        print_json(report)
        return
    rows = [(name, version or "not installed") for name, version in report["versions"].items()]
    rows.append(("platform", report["platform"]))
    rows.append(("device", f"{report['device']} (requested: {report['device_requested']})"))
    rows.extend((f"{name} dir", path) for name, path in report["paths"].items())
    show(table("gptscratch info", ["item", "value"], rows))
