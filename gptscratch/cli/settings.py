"""Global CLI options, shared by every command.

The root callback (gptscratch/cli/__init__.py) fills the module-level `SETTINGS` from
`--device`, `--quiet` and `--debug` before any sub-command runs. Commands read it instead
of re-declaring those options. The object is mutated in place (never rebound), so
`from gptscratch.cli.settings import SETTINGS` always sees the current values.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    """Options given before the sub-command: `gptscratch --device cpu -q train ...`."""

    device: str = "auto"
    quiet: bool = False
    debug: bool = False

    def update(self, *, device: str = "auto", quiet: bool = False, debug: bool = False) -> None:
        """Overwrite every field (each invocation starts from a clean slate)."""
        self.device = device
        self.quiet = quiet
        self.debug = debug


SETTINGS = Settings()


def announce_device() -> str:
    """Resolve `SETTINGS.device` to a concrete device, log "device: <name>" to stderr, return it.

    Raises gptscratch.errors.UsageError when the requested device is unavailable. Imports
    torch (through resolve_device) unless the device is "cpu", so call it inside commands.
    """
    from gptscratch.cli.render import log
    from gptscratch.device import resolve_device

    device = resolve_device(SETTINGS.device)
    log(f"device: {device}")
    return device
