"""`gptscratch info`: versions, the device that would be used, where files live, and what was measured here.

The first thing to run when something misbehaves: it shows which torch/tiktoken/datasets
are installed, what `--device` (or $GPTSCRATCH_DEVICE) resolves to on this machine, the
cache/data/runs folders ($GPTSCRATCH_HOME relocates them all), the processor, whether the speed
code of gptscratch.accel is on (`--no-accel`, GPTSCRATCH_ACCEL=0), and the answers it measured on
this machine (bf16 or fp32, which kernel) — `--remeasure` forgets them so they are timed again.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Annotated, Any

import typer

from gptscratch import __version__
from gptscratch.cli.render import log, print_json, show, table
from gptscratch.cli.settings import SETTINGS


def _installed_version(package: str) -> str | None:
    # Package metadata instead of importing: `import datasets` alone costs ~1 s.
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _accel_state() -> dict[str, Any]:
    """The switch and the stored measurements; torch is imported only when something is stored."""
    from gptscratch.accel import ENV_ACCEL, enabled
    from gptscratch.accel.measure import measurements_file, stored_here

    machine, answers = stored_here("cpu")
    return {"enabled": enabled(), "no_accel_flag": SETTINGS.no_accel, "env": os.environ.get(ENV_ACCEL),
            "measurements_file": str(measurements_file()), "machine": machine, "measurements": answers}


def collect_info() -> dict[str, Any]:
    """Everything `info` reports, as a JSON-ready dict. Raises UsageError for a bad --device."""
    from gptscratch import paths
    from gptscratch.device import cpu_model, resolve_device

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
        "cpu": cpu_model(),
        "device": resolved,
        "device_requested": SETTINGS.device,
        "paths": {
            "cache": str(paths.cache_root()),
            "data": str(paths.data_root()),
            "runs": str(paths.runs_root()),
            "pretrained": str(paths.pretrained_root()),
            "tokenizers": str(paths.tokenizers_root()),
        },
        "accel": _accel_state(),
    }


def _switch(accel: dict[str, Any]) -> str:
    if accel["enabled"]:
        return "on (turn off: --no-accel or GPTSCRATCH_ACCEL=0)"
    return "off (--no-accel)" if accel["no_accel_flag"] else f"off (GPTSCRATCH_ACCEL={accel['env']})"


def _forget_measurements() -> None:
    from gptscratch.accel.measure import forget, measurements_file

    if forget():
        log(f"forgot the measurements in {measurements_file()}; each is measured again the next time a command "
            "needs it")
    else:
        log(f"nothing to forget: {measurements_file()} does not exist (nothing was measured yet)")


def info(
    as_json: Annotated[bool, typer.Option("--json", help="Print one line of JSON.")] = False,
    remeasure: Annotated[
        bool, typer.Option("--remeasure", help="Forget what gptscratch.accel measured (bf16 or fp32, which "
                                               "kernel); it is measured again the next time a command needs it.")
    ] = False,
) -> None:
    """Show versions, the device, the cache/data/runs folders, and the speed choices measured on this machine."""
    if remeasure:
        _forget_measurements()
    report = collect_info()
    if as_json:
        print_json(report)
        return
    from gptscratch.accel.measure import describe

    rows = [(name, version or "not installed") for name, version in report["versions"].items()]
    rows.append(("platform", report["platform"]))
    rows.append(("cpu", report["cpu"]))
    rows.append(("device", f"{report['device']} (requested: {report['device_requested']})"))
    rows.extend((f"{name} dir", path) for name, path in report["paths"].items())
    accel = report["accel"]
    rows.append(("accel", _switch(accel)))
    rows.append(("measurements file", accel["measurements_file"]))
    if accel["machine"]:
        rows.append(("this machine", accel["machine"]))
    if not accel["measurements"]:
        rows.append(("measured here", "nothing yet (timed the first time a command needs a choice)"))
    show(table("gptscratch info", ["item", "value"], rows))
    if accel["measurements"]:
        show(table("measured on this machine (gptscratch.accel; `gptscratch info --remeasure` forgets it)",
                   ["question", "answer (median times)"], describe(accel["measurements"])))
