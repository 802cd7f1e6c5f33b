"""Local tables as documents: .jsonl/.json/.parquet/.csv files, one row per document.

A table source is a file, a folder holding only such files, or a glob (a folder that holds text
files is a files source, files.py). Rows are loaded with `datasets.load_dataset(builder,
data_files=..., streaming=True)` (builder "json" for .jsonl/.json): read in order without
building a cache copy. Except JSON Lines (.jsonl[.gz] only): jsonl.py reads the same rows ~10x
cheaper, no import; and Parquet (.parquet): parquet.py reads only the text and id columns with
pyarrow, without `datasets`. Rows become documents as table_rows.py says (ids, skipped rows, resume).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

from gptscratch.data.sources import table_rows
from gptscratch.data.sources.base import clean_stem, digest
from gptscratch.data.sources.files import TEXT_EXTENSIONS, canonical_source, is_glob, source_stem, walk_files
from gptscratch.data.sources.jsonl import JsonlReader, is_jsonl
from gptscratch.data.sources.parquet import ParquetReader, is_parquet
from gptscratch.errors import GptScratchError, UsageError

_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}


def _table_kind(path: str) -> str | None:
    lowered = path.lower().removesuffix(".gz")
    return next((ext for ext in _BUILDERS if lowered.endswith(ext)), None)


def table_files(source: str) -> list[Path]:
    """The table files a local source names, or [] when it is not a table source."""
    canonical = canonical_source(source)
    if is_glob(canonical):
        files = sorted(Path(p) for p in glob.glob(canonical, recursive=True) if os.path.isfile(p))
        tables = [f for f in files if _table_kind(str(f))]
        if tables and len(tables) != len(files):
            raise UsageError(f"{source!r} matches both table files ({', '.join(_BUILDERS)}) and other files; "
                             "narrow the pattern to one kind")
        return tables
    path = Path(canonical)
    if path.is_file():
        return [path] if _table_kind(str(path)) else []
    if path.is_dir():
        tables = []
        for relative, entry in walk_files(path):
            if entry.name.lower().endswith(TEXT_EXTENSIONS):
                return []  # a folder of text files: one document per file, as before
            if _table_kind(entry.name):
                tables.append(Path(entry.path))
        return sorted(tables)
    return []


class TableSource(table_rows.RowSource):
    """Local .jsonl/.json/.parquet/.csv files, one row per document."""

    kind = "table"

    def __init__(self, source: str, files: list[Path], text_field: str = "text"):
        kinds = {_BUILDERS[_table_kind(str(f))] for f in files}
        if len(kinds) > 1:
            raise UsageError(f"{source!r} mixes table formats ({', '.join(sorted(kinds))}); prepare one kind at a time")
        self.builder = kinds.pop()
        self.files = files
        self.canonical = canonical_source(source)
        single_file = Path(self.canonical)
        self.stem = clean_stem(single_file.name.split(".")[0]) if single_file.is_file() else source_stem(source)
        self.text_field = text_field
        self.options = {"text_field": text_field}
        # JSON Lines are read by our own reader (jsonl.py: same rows, ~10x cheaper than `datasets`)
        self.plain_jsonl = all(is_jsonl(f) for f in files)
        self.plain_parquet = all(is_parquet(f) for f in files)  # parquet.py: two columns, no `datasets`
        self.missing_field_patience = table_rows.SNAPSHOT_EVERY if self.plain_jsonl else 1

    def fingerprint(self) -> str:
        stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in self.files]
        return digest({"files": stats, **self.options})

    def total_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    def _rows(self, start: int, resume: dict | None):
        if self.plain_parquet:
            reader = ParquetReader(self.files, self.text_field)
        elif self.plain_jsonl:
            reader = JsonlReader(self.files)
        else:
            return super()._rows(start, resume)
        state = (resume or {}).get("stream_state")
        position = 0
        if int((resume or {}).get("stream_at", 0)) <= start and reader.seek(state):
            position = reader.rows
        return iter(reader), position, reader.state

    def _load(self):
        try:
            return table_rows.load_streaming(self.builder, data_files=[str(f) for f in self.files], split="train")
        except Exception as error:
            raise self._read_error(error) from None

    def _read_error(self, error: Exception) -> GptScratchError:
        message = " ".join(str(error).split())[:300]
        return UsageError(f"cannot read {self.describe()} as {self.builder} ({type(error).__name__}: {message}); "
                          "check the file format")
