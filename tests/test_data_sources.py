"""Data at scale: table files, Hub / FineWeb-Edu (through a local mirror), --tokens, resume, locks.

No network: the Hub paths read a folder laid out like the Hub repository (README.md with its
`configs:`, parquet files in FineWeb-Edu's schema) through GPTSCRATCH_HF_DATASETS_DIR -- the same
`datasets.load_dataset(ORG/NAME, name=CONFIG, streaming=True)` call, only the location differs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gptscratch import paths
from gptscratch.data import build, open_dataset, prepare, resolve_dataset
from gptscratch.data.sources import hub, table_rows
from gptscratch.data.splits import hash_split
from gptscratch.errors import NetworkError, UsageError

REPO_ROOT = Path(__file__).resolve().parent.parent
FINEWEB_README = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/*/*
- config_name: sample-10BT
  data_files:
  - split: train
    path: sample/10BT/*
---
# FineWeb-Edu (test mirror)
"""


def fineweb_rows(first: int, count: int) -> list[dict]:
    """Rows in FineWeb-Edu's schema; the text names its id so tests can map text back to rows."""
    return [{
        "text": f"row {i} <urn:uuid:{i:08d}> " + "educational words about numbers and science. " * (1 + i % 5),
        "id": f"<urn:uuid:{i:08d}>", "dump": "CC-MAIN-2024-10", "url": f"https://example.org/{i}",
        "file_path": "s3://commoncrawl/x.warc.gz", "language": "en", "language_score": 0.97,
        "token_count": 40, "score": 3.2, "int_score": 3,
    } for i in range(first, first + count)]


def make_fineweb_mirror(root: Path, files: int = 3, rows: int = 60) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = root / "HuggingFaceFW" / "fineweb-edu"
    (repo / "sample" / "10BT").mkdir(parents=True)
    (repo / "data" / "CC-MAIN-2024-10").mkdir(parents=True)
    (repo / "README.md").write_text(FINEWEB_README)
    for f in range(files):
        table = pa.Table.from_pylist(fineweb_rows(f * rows, rows))
        pq.write_table(table, repo / "sample" / "10BT" / f"{f:03d}_00000.parquet", row_group_size=16)
    pq.write_table(pa.Table.from_pylist(fineweb_rows(10_000, 5)), repo / "data" / "CC-MAIN-2024-10" / "000.parquet")
    return root


@pytest.fixture
def mirror(tmp_path, monkeypatch) -> Path:
    root = make_fineweb_mirror(tmp_path / "hub")
    monkeypatch.setenv(hub.ENV_HF_DATASETS_DIR, str(root))
    return root


def stream(dataset, split: str) -> np.ndarray:
    return np.asarray(dataset.tokens(split)) if dataset.num_tokens(split) else np.zeros(0, dtype=np.int64)


def texts(dataset, split: str) -> list[str]:
    tok = dataset.tokenizer
    ids = stream(dataset, split)
    cuts = np.flatnonzero(ids == tok.eot_id).tolist() + [len(ids)]
    return [tok.decode(ids[a + 1 : b].tolist()) for a, b in zip(cuts, cuts[1:])]


def row_number(text: str) -> int:
    return int(text.split()[1])


# --- local tables --------------------------------------------------------------------------


def write_tables(folder: Path, rows: list[dict]) -> dict[str, Path]:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    folder.mkdir(parents=True, exist_ok=True)
    jsonl = folder / "docs.jsonl"
    jsonl.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows), folder / "docs.parquet")
    pacsv.write_csv(pa.Table.from_pylist(rows), folder / "docs.csv")
    return {"jsonl": jsonl, "parquet": folder / "docs.parquet", "csv": folder / "docs.csv"}


TABLE_ROWS = [{"body": f"entry {i}: héllo 漢字, \"quoted\", line\nbreak " * (1 + i % 3), "n": i} for i in range(40)]


@pytest.mark.parametrize("kind", ["jsonl", "parquet", "csv"])
def test_table_files_prepare_one_document_per_row(tmp_path, kind):
    files = write_tables(tmp_path / "tables", TABLE_ROWS)
    dataset = prepare(str(files[kind]), "byte", text_field="body", name=f"t-{kind}")
    assert dataset.manifest["source_kind"] == "table" and dataset.complete
    got = texts(dataset, "train") + texts(dataset, "val")
    assert sorted(got) == sorted(row["body"] for row in TABLE_ROWS)
    val_rows = {int(t.split()[1].rstrip(":")) for t in texts(dataset, "val")}
    assert val_rows == {i for i in range(40) if hash_split(f"row-{i}") == "val"}  # no id column: row index
    with pytest.raises(UsageError, match="no field 'text'.*--text-field"):
        prepare(str(files[kind]), "byte", name=f"t-{kind}-missing")
    assert not (paths.data_root() / f"t-{kind}-missing").exists()


def test_text_and_table_files_can_be_globbed_and_mixed_kinds_are_refused(tmp_path):
    write_tables(tmp_path / "t", TABLE_ROWS[:10])
    both = prepare(str(tmp_path / "t" / "*.parquet"), "byte", text_field="body", name="globbed")
    assert both.num_documents("train") + both.num_documents("val") == 10
    with pytest.raises(UsageError, match="mixes table formats"):
        prepare(str(tmp_path / "t"), "byte", text_field="body")
    (tmp_path / "t" / "notes.txt").write_text("plain text wins in a folder")
    plain = prepare(str(tmp_path / "t"), "byte", name="folder-text")
    assert plain.manifest["source_kind"] == "files" and plain.manifest["split_rule"] == "position"


def test_tiny_table_still_gets_both_splits(tmp_path):
    rows = [{"text": "row zero"}, {"text": ""}, {"text": "row two"}]  # the empty row is skipped
    assert {hash_split("row-0"), hash_split("row-2")} == {"train"}  # so the hash puts nothing in val
    (tmp_path / "two.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    dataset = prepare(str(tmp_path / "two.jsonl"))
    assert dataset.num_documents("train") == dataset.num_documents("val") == 1
    assert dataset.manifest["split_overrides"]
    (tmp_path / "one.jsonl").write_text(json.dumps({"text": "a single row " * 20}) + "\n")
    single = prepare(str(tmp_path / "one.jsonl"))
    assert single.manifest["split_rule"] == "position" and single.num_tokens("val") > 0


# --- Hub and FineWeb-Edu (local mirror) --------------------------------------------------------


def test_fineweb_edu_streams_rows_with_their_ids(mirror):
    dataset = prepare("fineweb-edu", shard_tokens=2000)
    assert dataset.name == "fineweb-edu-cl100k_base" and dataset.tokenizer_name == "cl100k_base"
    assert dataset.source == "fineweb-edu:sample-10BT" and dataset.complete
    rows = {r["id"]: r["text"] for r in fineweb_rows(0, 180)}
    train, val = texts(dataset, "train"), texts(dataset, "val")
    assert sorted(train + val) == sorted(rows.values())
    assert {t.split()[2] for t in val} == {i for i in rows if hash_split(i) == "val"}  # split by the `id` column
    shards = dataset.manifest["splits"]["train"]["shards"]
    assert len(shards) > 2 and all(s["tokens"] == 2000 for s in shards[:-1])
    dataset.verify()
    other = prepare("hf:HuggingFaceFW/fineweb-edu", "byte")  # the "default" config, any hub name works alike
    assert other.name == "fineweb-edu-byte" and len(texts(other, "train") + texts(other, "val")) == 5


def test_hub_errors_are_one_line(mirror, monkeypatch):
    with pytest.raises(UsageError, match="BuilderConfig 'nope' not found"):
        prepare("fineweb-edu:nope")
    with pytest.raises(UsageError, match="does not exist"):
        prepare("hf:someone/missing")
    monkeypatch.delenv(hub.ENV_HF_DATASETS_DIR)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="cannot reach the Hugging Face Hub; use a local source or .*data download"):
        prepare("fineweb-edu")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: the probe fails at once
    with pytest.raises(NetworkError, match="cannot reach the Hugging Face Hub"):
        prepare("hf:org/name")
    assert time.monotonic() - started < 10
    assert not paths.data_root().exists() or not list(paths.data_root().iterdir())


def test_tokens_bound_is_exact_and_extending_keeps_every_document_in_its_split(mirror):
    small = prepare("fineweb-edu", tokens=1500, shard_tokens=400, name="fw")
    assert small.num_tokens("train") + small.num_tokens("val") == 1500 and not small.complete
    before = {split: stream(small, split) for split in ("train", "val")}
    assert prepare("fineweb-edu", tokens=1000, name="fw").manifest["updated"] == small.manifest["updated"]  # enough
    grown = prepare("fineweb-edu", tokens=6000, shard_tokens=400, name="fw")
    assert grown.num_tokens("train") + grown.num_tokens("val") == 6000
    for split in ("train", "val"):  # growing only appends: nothing moves between splits
        after = stream(grown, split)
        np.testing.assert_array_equal(after[: len(before[split])], before[split])
    for split in ("train", "val"):
        complete_docs = [t for t in texts(grown, split) if len(t.split()) > 2]  # the last one may be cut short
        assert complete_docs and all(hash_split(t.split()[2]) == split for t in complete_docs)
    once = prepare("fineweb-edu", tokens=6000, shard_tokens=400, name="fw-once")
    for split in ("train", "val"):
        np.testing.assert_array_equal(stream(once, split), stream(grown, split))


def test_resolve_uses_a_download_and_continues_an_interrupted_one(mirror):
    downloaded = prepare("fineweb-edu", tokens=800)
    assert resolve_dataset("fineweb-edu", None).path == downloaded.path  # a download is used as it is
    assert resolve_dataset("fineweb-edu", "cl100k_base").num_tokens("train") + downloaded.num_tokens("val") == 800


# --- interruption, resume, concurrency ---------------------------------------------------------


class Interrupt:
    """A progress callback that raises KeyboardInterrupt at the n-th token report."""

    def __init__(self, after: int):
        self.after, self.seen = after, 0

    def __call__(self, event: dict) -> None:
        if "tokens" in event:
            self.seen += 1
            if self.seen == self.after:
                raise KeyboardInterrupt


@pytest.mark.parametrize("source", ["fineweb-edu", "folder"])
def test_interrupted_prepare_resumes_to_the_same_tokens(mirror, tmp_path, monkeypatch, source):
    monkeypatch.setattr(build, "BATCH_CHARS", 600)  # many small batches: many chances to interrupt
    monkeypatch.setattr(table_rows, "SNAPSHOT_EVERY", 7)  # resume from stream positions, not by re-reading
    if source == "folder":
        source = str(tmp_path / "docs")
        os.makedirs(source)
        for number, row in enumerate(fineweb_rows(0, 120)):
            Path(source, f"{number:04d}.txt").write_text(row["text"])
    reference = prepare(source, "byte", name="reference", shard_tokens=900)
    with pytest.raises(KeyboardInterrupt):
        prepare(source, "byte", name="resumed", shard_tokens=900, progress=Interrupt(6))
    partial = json.loads((paths.data_root() / "resumed" / "manifest.json").read_text())
    assert not partial["complete"] and 0 < partial["splits"]["train"]["tokens"] < reference.num_tokens("train")
    assert not list((paths.data_root() / "resumed").glob("*.partial"))
    resumed = prepare(source, "byte", name="resumed", shard_tokens=900)
    assert resumed.complete
    for split in ("train", "val"):
        np.testing.assert_array_equal(stream(resumed, split), stream(reference, split))
        assert resumed.num_documents(split) == reference.num_documents(split)
    resumed.verify()


KILL_SCRIPT = """
import os, signal, sys
sys.path.insert(0, {repo!r})
from gptscratch.data import build, prepare
build.BATCH_CHARS = 600
seen = []
def progress(event):
    if "tokens" in event:
        seen.append(event)
        if len(seen) == 5:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup at all: partial files stay behind
prepare("fineweb-edu", "byte", name="killed", shard_tokens=700, progress=progress)
"""


def test_killed_prepare_leaves_no_readable_partial_shard_and_resumes(mirror):
    result = subprocess.run([sys.executable, "-c", KILL_SCRIPT.format(repo=str(REPO_ROOT))], env=dict(os.environ))
    assert result.returncode == -9
    folder = paths.data_root() / "killed"
    assert list(folder.glob("*.partial"))  # a half-written shard is on disk ...
    manifest = json.loads((folder / "manifest.json").read_text())
    listed = {s["file"] for split in ("train", "val") for s in manifest["splits"][split]["shards"]}
    assert listed and not any(name.endswith(".partial") for name in listed)  # ... but never listed
    opened = open_dataset("killed")
    assert opened.num_tokens("train") == sum(s["tokens"] for s in manifest["splits"]["train"]["shards"])
    resumed = prepare("fineweb-edu", "byte", name="killed", shard_tokens=700)
    reference = prepare("fineweb-edu", "byte", name="reference", shard_tokens=700)
    for split in ("train", "val"):
        np.testing.assert_array_equal(stream(resumed, split), stream(reference, split))
    assert not list(folder.glob("*.partial"))


def test_two_concurrent_prepares_do_not_corrupt_the_dataset(mirror, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "gptscratch", "--quiet", "data", "prepare", "fineweb-edu", "--tokenizer", "byte",
               "--shard-tokens", "500", "--json"]
    runs = [subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    summaries = [json.loads(out) for out, _ in outputs]
    assert summaries[0]["train_tokens"] == summaries[1]["train_tokens"] > 0
    dataset = open_dataset("fineweb-edu-byte")
    dataset.verify()
    reference = prepare("fineweb-edu", "byte", name="reference", shard_tokens=500)
    for split in ("train", "val"):
        np.testing.assert_array_equal(stream(dataset, split), stream(reference, split))
    listed = {s["file"] for split in ("train", "val") for s in dataset.manifest["splits"][split]["shards"]}
    assert {p.name for p in dataset.path.iterdir()} == listed | {"manifest.json"}


def test_a_prepare_waits_for_the_lock_held_by_another(mirror):
    from gptscratch.data.lock import dataset_lock

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    command = [sys.executable, "-m", "gptscratch", "data", "prepare", "fineweb-edu", "--tokenizer", "byte", "--json"]
    with dataset_lock("fineweb-edu-byte", lambda event: None):
        run = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        first_line = run.stderr.readline()
        assert "waiting for another prepare of fineweb-edu-byte" in first_line
        assert not (paths.data_root() / "fineweb-edu-byte").exists()  # it waits instead of writing
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert json.loads(out)["name"] == "fineweb-edu-byte"
    open_dataset("fineweb-edu-byte").verify()


def test_streamed_tables_do_not_import_torch(tmp_path):
    """`datasets` imports torch for every streamed dataset when it believes torch is there; prepare tells it
    otherwise through its USE_TORCH switch (and leaves the variable as it found it)."""
    table = tmp_path / "rows.csv"
    table.write_text("text\n" + "".join(f"row number {i} of a small table\n" for i in range(40)), encoding="utf-8")
    script = ("import os, sys\n"
              "from gptscratch.data import prepare\n"
              f"prepare({str(table)!r}, 'byte', name='rows')\n"
              "assert 'datasets' in sys.modules, 'the csv was not read through datasets'\n"
              "print('torch' in sys.modules, os.environ.get('USE_TORCH'))\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "None"]
