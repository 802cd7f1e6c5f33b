"""Global CLI options, shared by every command.

The root callback (gptscratch/cli/__init__.py) fills the module-level `SETTINGS` from
`--device`, `--quiet`, `--debug` and `--no-accel` before any sub-command runs. Commands read it
instead of re-declaring those options. The object is mutated in place (never rebound), so
`from gptscratch.cli.settings import SETTINGS` always sees the current values.

Plain data only: this module imports nothing from gptscratch/cli/ (render.py, which reads
`SETTINGS.quiet`, imports it, so anything here that rendered would be an import cycle).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Settings:
    """Options given before the sub-command: `gptscratch --device cpu -q train ...`."""

    device: str = "auto"
    quiet: bool = False
    debug: bool = False
    no_accel: bool = False      # --no-accel was given (it also sets GPTSCRATCH_ACCEL=0, the switch accel reads)

    def update(self, *, device: str = "auto", quiet: bool = False, debug: bool = False,
               no_accel: bool = False) -> None:
        """Overwrite every field (each invocation starts from a clean slate)."""
        self.device = device
        self.quiet = quiet
        self.debug = debug
        self.no_accel = no_accel


SETTINGS = Settings()
