"""The .parquet fast path (gptscratch/data/sources/parquet.py) is invisible: the same rows (numbers, ids, texts) as
reading the table through `datasets`, resumable inside a row group, and an interrupted prepare resumes to the
same tokens. Files are written here with pyarrow (what `datasets` reads Parquet with)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from helpers import check_interrupted_prepare_resumes

from gptscratch.data import build
from gptscratch.data.sources import table_rows
from gptscratch.data.sources.parquet import ParquetReader
from gptscratch.data.sources.tables import TableSource
from gptscratch.errors import UsageError

ROWS = [
    {"text": "first row", "id": "a", "url": "https://example.org/a", "score": 0.5},
    {"text": "no id in this row, so it keeps the id column's null", "id": None, "url": None, "score": 1.0},
    {"text": None, "id": "null-text", "url": "u", "score": 0.0},
    {"text": "", "id": "empty", "url": "u", "score": 0.0},
    {"text": "héllo 漢字 🎉 \"quoted\"\nand a newline", "id": "unicode", "url": "u", "score": 0.1},
]


def write_parquet(path: Path, rows, row_group_size: int | None = None) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def read_both(files: list[Path], text_field: str = "text") -> tuple[list, list]:
    source = TableSource(str(files[0]) if len(files) == 1 else str(files[0].parent), files, text_field=text_field)
    assert source.plain_parquet
    fast = [(d.index, d.doc_id, d.text) for d in source.documents()]
    source.plain_parquet = False  # the `datasets` path
    slow = [(d.index, d.doc_id, d.text) for d in source.documents()]
    return fast, slow


def test_parquet_reader_gives_the_rows_datasets_gives(tmp_path):
    fast, slow = read_both([write_parquet(tmp_path / "a.parquet", ROWS)])
    assert fast == slow
    assert [(index, doc_id) for index, doc_id, _ in fast] == [(0, "a"), (1, "row-1"), (4, "unicode")]
    folder = tmp_path / "many"
    folder.mkdir()
    files = [write_parquet(folder / f"{n}.parquet", [{"text": f"file {n} row {i}", "id": 5 * n + i}
                                                     for i in range(5)], row_group_size=2) for n in range(3)]
    fast, slow = read_both(files)
    assert fast == slow and [(index, doc_id) for index, doc_id, _ in fast] == [(i, str(i)) for i in range(15)]
    no_id = write_parquet(tmp_path / "no_id.parquet", [{"body": f"text {i}", "n": i} for i in range(4)])
    fast, slow = read_both([no_id], text_field="body")
    assert fast == slow and [doc_id for _, doc_id, _ in fast] == [f"row-{i}" for i in range(4)]


def test_parquet_resumes_inside_a_row_group_and_tolerates_foreign_states(tmp_path, monkeypatch):
    monkeypatch.setattr("gptscratch.data.sources.parquet.BATCH_ROWS", 4)  # several batches per row group
    files = [write_parquet(tmp_path / f"{n}.parquet", [{"text": f"row {10 * n + i}"} for i in range(10)],
                           row_group_size=7) for n in range(2)]
    reader = ParquetReader(files)
    rows = iter(reader)
    for _ in range(12):  # file 0 (groups of 7 and 3), then 2 rows into file 1's first group
        next(rows)
    state = reader.state()
    assert state == {"reader": "parquet", "file": 1, "group": 0, "offset": 2, "rows": 12}
    again = ParquetReader(files)
    assert again.seek(state) and [row["text"] for row in again] == [f"row {i}" for i in range(12, 20)]
    mid_batch = ParquetReader(files)
    assert mid_batch.seek({**state, "file": 0, "offset": 5, "rows": 5})
    assert [row["text"] for row in mid_batch][:3] == ["row 5", "row 6", "row 7"]
    source = TableSource(str(tmp_path), files)
    resumed = list(source.documents(start=12, resume={"stream_state": state, "stream_at": 12}))
    foreign = list(source.documents(start=12, resume={"stream_state": {"examples_iterable": {}}, "stream_at": 10}))
    assert [d.text for d in resumed] == [d.text for d in foreign] == [f"row {i}" for i in range(12, 20)]
    assert [d.index for d in resumed] == list(range(12, 20))


def test_parquet_missing_column_and_corrupt_file_are_one_line_errors(tmp_path):
    path = write_parquet(tmp_path / "body.parquet", [{"body": "x", "url": "u"}])
    with pytest.raises(UsageError, match=r"body.parquet has no field 'text' \(fields: body, url\); pass --text-field"):
        list(TableSource(str(path), [path]).documents())
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet file")
    with pytest.raises(UsageError, match=r"cannot read .*broken.parquet as parquet .*check the file format"):
        list(TableSource(str(broken), [broken]).documents())


def test_interrupted_parquet_prepare_resumes_to_the_same_tokens(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "BATCH_CHARS", 600)
    monkeypatch.setattr(table_rows, "SNAPSHOT_EVERY", 7)
    monkeypatch.setattr("gptscratch.data.sources.parquet.BATCH_ROWS", 16)
    path = write_parquet(tmp_path / "docs.parquet", [{"text": f"document {i}: " + "words and more words " *
                                                      (1 + i % 4), "id": f"doc-{i}", "url": f"u{i}"}
                                                     for i in range(150)], row_group_size=40)
    check_interrupted_prepare_resumes(path, reader="parquet")


def test_preparing_parquet_does_not_import_datasets(tmp_path):
    path = write_parquet(tmp_path / "docs.parquet", [{"text": f"doc {i}"} for i in range(20)])
    code = ("import sys; from gptscratch.data import prepare; "
            f"prepare({str(path)!r}, 'byte', name='p'); print('datasets' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parent.parent,
                            env={**__import__("os").environ, "GPTSCRATCH_HOME": str(tmp_path / "home")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "False"
