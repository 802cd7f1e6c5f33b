"""Small builders shared by tests (imported explicitly, not a fixture module)."""

from __future__ import annotations

from pathlib import Path

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
