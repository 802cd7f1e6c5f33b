"""Local Parquet files read with pyarrow directly: the fast path for `.parquet` tables (FineWeb's format).

Why not `datasets` here: for a local table it costs ~1 s of import, ~300 MB of memory, and turns every
row of every column into a Python dict. Parquet is columnar, so we read only the two columns a document
needs -- the text field and `id` when the file has one (FineWeb also carries url, date, scores, ...) --
one batch of BATCH_ROWS rows at a time, and turn each column into Python strings in one call.
pyarrow is already installed (it is what `datasets` reads Parquet with), so this adds no dependency.

The rows are the ones `datasets.load_dataset("parquet", ...)` gives: the files in order, the row groups in
order, the same row numbers (so ids "row-<index>" and the hash split are unchanged); a null or non-string
text is a row without text (skipped, its number still counts). A file without the text column is a
UsageError naming the columns it has.

Resume: `state()` is {"reader": "parquet", "file", "group", "offset", "rows"} -- the file number, the row
group, the rows of that group already given, and the rows read in all -- and `seek(state)` continues
there, decoding only the one row group it lands in.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from gptscratch.errors import UsageError

READER = "parquet"
BATCH_ROWS = 1024  # rows decoded at once: bounded memory even for files written as one huge row group


def is_parquet(path: Path) -> bool:
    return path.name.lower().endswith(".parquet")


class ParquetReader:
    """Iterate {text_field: ..., "id": ...} rows of several .parquet files in order; `rows` counts rows read."""

    def __init__(self, files: list[Path], text_field: str = "text"):
        self.files = [Path(f) for f in files]
        self.text_field = text_field
        self.file, self.group, self.offset, self.rows = 0, 0, 0, 0

    def state(self) -> dict:
        return {"reader": READER, "file": self.file, "group": self.group, "offset": self.offset, "rows": self.rows}

    def seek(self, state: dict) -> bool:
        """Continue at `state`; False (nothing changed) when it is not one of ours."""
        if not isinstance(state, dict) or state.get("reader") != READER:
            return False
        self.file, self.group = int(state["file"]), int(state["group"])
        self.offset, self.rows = int(state["offset"]), int(state["rows"])
        return True

    def __iter__(self) -> Iterator[dict]:
        import pyarrow.parquet as pq

        field = self.text_field
        while self.file < len(self.files):
            path = self.files[self.file]
            with pq.ParquetFile(path) as handle:
                names = handle.schema_arrow.names
                if field not in names:
                    raise UsageError(f"{path.name} has no field {field!r} (fields: {', '.join(sorted(names))}); "
                                     "pass --text-field NAME")
                columns = [field] + (["id"] if "id" in names and field != "id" else [])
                while self.group < handle.num_row_groups:
                    skip = self.offset  # rows of this group given before a resume
                    for batch in handle.iter_batches(batch_size=BATCH_ROWS, row_groups=[self.group],
                                                     columns=columns, use_threads=False):
                        if skip >= batch.num_rows:
                            skip -= batch.num_rows
                            continue
                        if skip:
                            batch, skip = batch.slice(skip), 0
                        values = [batch.column(name).to_pylist() for name in columns]
                        for row in zip(*values):
                            self.offset += 1
                            self.rows += 1
                            yield dict(zip(columns, row))
                    self.group, self.offset = self.group + 1, 0
            self.file, self.group, self.offset = self.file + 1, 0, 0
