"""Rows of a streamed table as documents: what local tables (tables.py) and Hub datasets (hub.py) share.

Each row is one document: text = row[text_field]; id = row["id"] when present (FineWeb-Edu
has one), else "row-<index>"; rows without text are skipped (their index still counts, so
ids stay stable). Every SNAPSHOT_EVERY rows the stream's `state_dict()` (for .jsonl: file and
byte offset) is attached to a document: prepare() stores the last one before its commit
point, and a resumed prepare continues from it instead of re-reading the rows already done.
"""

from __future__ import annotations

from collections.abc import Iterator

from gptscratch.data.sources.base import Doc, Source
from gptscratch.errors import GptScratchError, UsageError

SNAPSHOT_EVERY = 1000


def load_streaming(*args, **kwargs):
    """datasets.load_dataset(..., streaming=True), without making `datasets` import torch.

    `datasets` creates a shared-memory torch tensor for every streamed dataset when torch is installed (for
    DataLoader workers), which imports torch: +180 MB and seconds of start-up for a prepare that never touches
    torch. `datasets` decides whether torch is there when it is first imported, from its documented USE_TORCH
    variable; so when neither is loaded yet, `datasets` is imported with USE_TORCH=0 (the variable is restored
    right after, for any library imported later). Once torch is loaded the question is moot."""
    import os
    import sys

    if "datasets" not in sys.modules and "torch" not in sys.modules:
        previous = os.environ.get("USE_TORCH")
        os.environ["USE_TORCH"] = "0"
        try:
            import datasets  # noqa: F401 - imported here so that it reads USE_TORCH=0
        finally:
            if previous is None:
                os.environ.pop("USE_TORCH", None)
            else:
                os.environ["USE_TORCH"] = previous
    import datasets

    return datasets.load_dataset(*args, streaming=True, **kwargs)


class RowSource(Source):
    """Shared by local tables and Hub datasets: rows of a streamed `datasets` table."""

    text_field = "text"
    # `datasets` gives every row every column (None where absent): the first row tells. A
    # .jsonl row may simply lack a key, so that reader gives up after this many rows without it.
    missing_field_patience = 1

    def _load(self):
        raise NotImplementedError

    def _read_error(self, error: Exception) -> GptScratchError:
        raise NotImplementedError

    def _rows(self, start: int, resume: dict | None):
        """(rows iterator, number of the first row it gives, state() of the stream after a row)."""
        stream = self._load()
        position = 0
        if resume and resume.get("stream_state") is not None and int(resume.get("stream_at", 0)) <= start:
            stream.load_state_dict(resume["stream_state"])
            position = int(resume["stream_at"])
        return iter(stream), position, stream.state_dict

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        field, seen_field, missing = self.text_field, False, 0
        try:
            rows, position, state = self._rows(start, resume)
            pending_snapshot = None
            row = None
            for row in rows:
                index, position = position, position + 1
                if not seen_field:
                    seen_field = field in row
                    missing += not seen_field
                    if missing >= self.missing_field_patience:
                        raise self._no_field(row)
                if index < start:
                    continue
                if (index + 1) % SNAPSHOT_EVERY == 0:
                    pending_snapshot = (state(), index + 1)
                text = row.get(field)
                if not isinstance(text, str) or not text:
                    continue
                doc_id = row.get("id")
                doc_id = str(doc_id) if doc_id is not None else f"row-{index}"
                yield Doc(index, doc_id, text, snapshot=pending_snapshot)
                pending_snapshot = None
            if missing and not seen_field:
                raise self._no_field(row)
        except GptScratchError:
            raise
        except Exception as error:  # network drops, malformed files: one line each
            raise self._read_error(error) from None

    def _no_field(self, row: dict) -> UsageError:
        return UsageError(f"{self.describe()} has no field {self.text_field!r} (fields: {', '.join(sorted(row))}); "
                          "pass --text-field NAME")

    def describe(self) -> str:
        return self.canonical
