"""Small builders shared by tests (imported explicitly, not a fixture module).

Tests get their small model from the `tiny_model` fixture (tests/conftest.py); `build_tiny_model` is the same
builder as a plain function, for the places a fixture cannot reach (module-scoped fixtures, helper functions).
torch is imported inside the functions: conftest.py imports this module, and CLI start-up tests prove that the CLI
does not load torch.
"""

from __future__ import annotations

from pathlib import Path

# The tests' small GPT: every part of the real thing (2 blocks, so there is a layer between two others' outputs;
# 4 heads of 8 dimensions, so rotary fractions of 1/4 and 1/2 rotate a whole, even number of them) at a size
# where a forward pass is instant. The vocabulary (101) differs from every other dimension, so a test that mixes
# up two of them fails on a shape. Tests that tokenize with the byte tokenizer override vocab_size (257 ids, or
# 320 = 257 rounded up to a multiple of 64, as training rounds it).
TINY_MODEL = dict(vocab_size=101, context_length=32, n_layer=2, n_head=4, d_model=32)


def build_tiny_model(*, seed: int = 0, dtype=None, device=None, **overrides):
    """A freshly built GPT of shape TINY_MODEL updated with `overrides` (any ModelConfig field), in eval mode.

    `seed` seeds torch's global generator right before the weights are drawn, so the same call builds the same
    weights every time and what a test draws from torch's generator afterwards is reproducible too.
    `dtype` / `device` move the built model (e.g. dtype=torch.float64 for gradient checks, device="cuda")."""
    import torch

    from gptscratch.model import GPT, ModelConfig

    torch.manual_seed(seed)
    model = GPT(ModelConfig(**{**TINY_MODEL, **overrides}))
    if dtype is not None or device is not None:
        model = model.to(device=device, dtype=dtype)
    return model.eval()

SAMPLE_TEXT = (
    "The quick brown fox jumps over the lazy dog. " * 40
    + "Pack my box with five dozen liquor jugs. " * 40
    + "How vexingly quick daft zebras jump! " * 40
)


def write_corpus(folder: Path, files: int = 4) -> Path:
    """A folder of small English-like text files: enough for a tiny model to learn something quickly."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (folder / f"doc{i}.txt").write_text(SAMPLE_TEXT[i * 50:] + SAMPLE_TEXT[: i * 50], encoding="utf-8")
    return folder


def tiny_train_config(data: str, **overrides):
    from gptscratch.training import TrainConfig

    values = dict(data=data, tokenizer="byte", size="tiny", model={"context_length": 32}, batch_size=4,
                  max_steps=6, eval_every=3, eval_batches=2, log_every=1, precision="fp32", lr=3e-3)
    values.update(overrides)
    return TrainConfig(**values)


def check_interrupted_prepare_resumes(path: Path, reader: str) -> None:
    """Prepare `path` whole, then again interrupted after 8 token events and resumed: the resumed dataset
    must equal the uninterrupted one token for token, and the partial manifest must hold `reader`'s state.
    (Callers shrink build.BATCH_CHARS and table_rows.SNAPSHOT_EVERY so that there are many events and snapshots.)"""
    import json

    import numpy as np
    import pytest

    from gptscratch import paths
    from gptscratch.data import prepare

    reference = prepare(str(path), "cl100k_base", name="reference", shard_tokens=300)

    def interrupt(event, seen=[]):
        if "tokens" in event:
            seen.append(event)
            if len(seen) == 8:
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(str(path), "cl100k_base", name="resumed", shard_tokens=300, progress=interrupt)
    partial = json.loads((paths.data_root() / "resumed" / "manifest.json").read_text())
    assert not partial["complete"] and partial["progress"]["stream_state"]["reader"] == reader
    resumed = prepare(str(path), "cl100k_base", name="resumed", shard_tokens=300)
    for split in ("train", "val"):
        np.testing.assert_array_equal(np.asarray(resumed.tokens(split)), np.asarray(reference.tokens(split)))
        assert resumed.num_documents(split) == reference.num_documents(split)
    resumed.verify()


def interrupt_sampler_at(monkeypatch, sampler_class, batch_number: int) -> None:
    """Make `sampler_class`'s training sampler raise KeyboardInterrupt (as Ctrl-C would) when asked for training
    batch `batch_number` (1-based); later batches come as usual."""
    original, calls = sampler_class.next_batch, {"n": 0}

    def next_batch(self):
        if self.split == "train":
            calls["n"] += 1
            if calls["n"] == batch_number:
                monkeypatch.setattr(sampler_class, "next_batch", original)
                raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(sampler_class, "next_batch", next_batch)


def run_cli_in_process(capsys, monkeypatch, *args: str) -> tuple[int, str, str]:
    """`gptscratch --device cpu ARGS` in this process, stdin empty, output captured like a pipe:
    → (exit status, stdout, stderr). rich reads TTY_COMPATIBLE when it prints, so a table gets the width it needs
    (no folded cells) and a FORCE_COLOR in the caller's environment cannot make the capture a terminal."""
    import io
    import sys

    import pytest

    from gptscratch.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    with pytest.raises(SystemExit) as exit_info:
        main(["--device", "cpu", *args])
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def chromium_path() -> str | None:
    """The headless browser the page tests use (Debian's `chromium`, or another Chromium on PATH), or None."""
    import shutil

    return next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
