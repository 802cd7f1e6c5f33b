"""Error types shared by the library and the CLI.

Library code raises these instead of printing or exiting; the CLI turns them into a single
line "error: <message>" on stderr and exits with `exit_code`. Every message is one line
that names the problem AND how to fix it.

Exit codes: 2 for bad user input (`UsageError`: impossible flag values, missing/empty/binary
input files, unknown names, vocabulary mismatch), 1 for runtime failures (everything else).
"""

from __future__ import annotations


class GptScratchError(Exception):
    """Base class: a failure the user can act on. The message includes the fix."""

    exit_code: int = 1


class UsageError(GptScratchError):
    """Bad input from the user (flags, paths, names, file contents)."""

    exit_code = 2


class DataError(GptScratchError):
    """A prepared dataset is corrupt or a source cannot be read."""


class CheckpointError(GptScratchError):
    """A checkpoint is missing pieces or cannot be decoded."""


class CheckpointNotFoundError(UsageError):
    """No checkpoint, run or converted pretrained model answers to `name`.

    gptscratch/checkpoint.py (the lowest layer) raises it without knowing which names can be downloaded; the
    pretrained layer, which does, turns it into "not downloaded yet; run `gptscratch pretrained download NAME`"
    (`gptscratch.pretrained.registry.explain_missing_checkpoint`, applied by the CLI to every error)."""

    def __init__(self, message: str, name: str | None = None):
        super().__init__(message)
        self.name = name


class TokenizerError(GptScratchError):
    """A tokenizer cannot be built (e.g. its encoding file is unavailable offline)."""


class NetworkError(GptScratchError):
    """Something needed the network and it was not reachable."""


class TrainingError(GptScratchError):
    """Training cannot continue (non-finite loss, diverged optimiser state, ...)."""
