"""The fast paths of prepare(): chunked tiktoken encoding and the .jsonl reader.

Both must be invisible: the same ids as encoding each text on its own, the same rows (numbers,
ids, texts) as reading the table through `datasets`, and resumable from a byte offset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import check_interrupted_prepare_resumes

from gptscratch.data import build, encode
from gptscratch.data.encode import BatchEncoder
from gptscratch.data.sources import table_rows
from gptscratch.data.sources.jsonl import JsonlReader
from gptscratch.data.sources.tables import TableSource
from gptscratch.errors import UsageError
from gptscratch.tokenizers import EOT_TEXT, get_tokenizer

TRICKY_TEXTS = [
    "plain words", "trailing spaces   ", "   leading spaces", "", "\n\nnewlines\n", "héllo 漢字 🎉",
    f"a literal {EOT_TEXT} marker", "other specials <|fim_prefix|> and <|endofprompt|> stay text",
    "x" * 3000, "!!!", " ", "digits 1234567 and 89", "\u00a0non-breaking", "end with eot " + EOT_TEXT,
]


@pytest.mark.parametrize("name", ["cl100k_base", "byte"])
def test_batch_encoder_gives_each_text_its_own_ids(monkeypatch, name):
    monkeypatch.setattr(encode, "CHUNK_CHARS", 40)  # many chunks, boundaries everywhere
    tok = get_tokenizer(name)
    texts = TRICKY_TEXTS * 3
    with BatchEncoder(tok, threads=2) as encoder:
        batches = [texts[i : i + 7] for i in range(0, len(texts), 7)]
        got = [ids for _, arrays in encoder.encode_batches(batches) for ids in arrays]
    assert len(got) == len(texts)
    for text, ids in zip(texts, got):
        assert ids.dtype == np.uint32 and ids.tolist() == tok.encode(text), text


# --- .jsonl: our reader against `datasets` -------------------------------------------------------

ROWS = [
    {"text": "first row", "id": "a"},
    None,  # a blank line: not a row
    {"text": "no id here, so row-1"},
    {"text": None, "id": "null-text"},
    {"other": "no text field in this row"},
    {"text": "", "id": "empty"},
    {"text": "héllo 漢字 🎉 \"quoted\"\nand a newline", "id": "unicode"},
    {"text": "emoji by escape \ud83d\ude00", "id": "7"},
]


def write_jsonl(path: Path, rows=ROWS, crlf: bool = False, bom: bool = False) -> Path:
    end = "\r\n" if crlf else "\n"
    lines = [("" if row is None else json.dumps(row)) + end for row in rows]
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + "".join(lines).encode("utf-8"))
    return path


def read_both(files: list[Path]) -> tuple[list, list]:
    source = TableSource(str(files[0]) if len(files) == 1 else str(files[0].parent), files)
    assert source.plain_jsonl
    fast = [(d.index, d.doc_id, d.text) for d in source.documents()]
    source.plain_jsonl, source.missing_field_patience = False, 1  # the `datasets` path
    slow = [(d.index, d.doc_id, d.text) for d in source.documents()]
    return fast, slow


def test_jsonl_reader_gives_the_rows_datasets_gives(tmp_path):
    fast, slow = read_both([write_jsonl(tmp_path / "a.jsonl", crlf=True, bom=True)])
    assert fast == slow
    assert [doc_id for _, doc_id, _ in fast] == ["a", "row-1", "unicode", "7"]  # blank line not counted
    folder = tmp_path / "many"
    folder.mkdir()
    files = [write_jsonl(folder / f"{n}.jsonl", [{"text": f"file {n} row {i}", "id": 5 * n + i} for i in range(5)])
             for n in range(3)]
    fast, slow = read_both(files)
    assert fast == slow and [(index, doc_id) for index, doc_id, _ in fast] == [(i, str(i)) for i in range(15)]


def test_jsonl_resumes_from_a_byte_offset_and_tolerates_foreign_states(tmp_path):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"text": f"row {i}"} for i in range(30)])
    reader = JsonlReader([path])
    rows = iter(reader)
    for _ in range(12):
        next(rows)
    state = reader.state()
    assert state == {"reader": "jsonl", "file": 0, "offset": len("".join(json.dumps({"text": f"row {i}"}) + "\n"
                                                                         for i in range(12))), "rows": 12}
    again = JsonlReader([path])
    assert again.seek(state) and [row["text"] for row in again][:2] == ["row 12", "row 13"]
    source = TableSource(str(path), [path])
    resumed = list(source.documents(start=12, resume={"stream_state": state, "stream_at": 12}))
    foreign = list(source.documents(start=12, resume={"stream_state": {"examples_iterable": {}}, "stream_at": 10}))
    assert [d.text for d in resumed] == [d.text for d in foreign] == [f"row {i}" for i in range(12, 30)]
    assert [d.index for d in resumed] == list(range(12, 30))


def test_jsonl_field_errors_and_bad_lines(tmp_path):
    late = write_jsonl(tmp_path / "late.jsonl", [{"body": "x"}, {"text": "the field appears later"}])
    assert [d.text for d in TableSource(str(late), [late]).documents()] == ["the field appears later"]
    none = write_jsonl(tmp_path / "none.jsonl", [{"body": "x"}] * 3)
    with pytest.raises(UsageError, match=r"has no field 'text' \(fields: body\); pass --text-field"):
        list(TableSource(str(none), [none]).documents())
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "fine"}\n{"text": oops}\n')
    with pytest.raises(UsageError, match=r"cannot read .*broken.jsonl as json .*row 2.*check the file format"):
        list(TableSource(str(broken), [broken]).documents())
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text('{"text": "lone \\ud800 surrogate"}\n')
    assert [d.text for d in TableSource(str(surrogate), [surrogate]).documents()] == ["lone \ufffd surrogate"]


def test_interrupted_jsonl_prepare_resumes_from_its_offset(tmp_path, monkeypatch):
    monkeypatch.setattr(build, "BATCH_CHARS", 600)
    monkeypatch.setattr(table_rows, "SNAPSHOT_EVERY", 7)
    path = write_jsonl(tmp_path / "docs.jsonl", [{"text": f"document {i}: " + "words and more words " * (1 + i % 4),
                                                   "id": f"doc-{i}"} for i in range(150)])
    check_interrupted_prepare_resumes(path, reader="jsonl")
