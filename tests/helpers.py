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
