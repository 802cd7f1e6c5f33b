"""Data pipeline: sources -> shards + manifest -> memmaps -> sampled batches."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gptscratch import paths
from gptscratch.data import WindowSampler, eval_batches, list_datasets, open_dataset, prepare, resolve_dataset
from gptscratch.data.build import split_text
from gptscratch.data.shards import ConcatenatedTokens
from gptscratch.data.splits import assign_splits
from gptscratch.errors import UsageError

DOCS = {f"doc{i:02d}.txt": f"document {i}: é 漢字 🎉 " + "lorem ipsum " * (i + 1) for i in range(24)}


def write_corpus(folder: Path, docs: dict[str, str] = DOCS) -> Path:
    for name, text in docs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "notes")


def documents_between_eots(tokens: np.ndarray, tok) -> list[str]:
    """Decode a split back into its documents (each one starts with EOT)."""
    assert tokens[0] == tok.eot_id
    cuts = np.flatnonzero(np.asarray(tokens) == tok.eot_id).tolist() + [len(tokens)]
    return [tok.decode(np.asarray(tokens[a + 1 : b]).tolist()) for a, b in zip(cuts, cuts[1:])]


def test_prepare_folder_writes_shards_matching_manifest(corpus):
    dataset = prepare(str(corpus), "byte")
    assert dataset.name == "notes-byte" and dataset.path == paths.data_root() / "notes-byte"
    manifest = json.loads((dataset.path / "manifest.json").read_text())
    assert (manifest["format"], manifest["version"], manifest["dtype"]) == ("gptscratch-dataset", 1, "uint16")
    assert manifest["source"] == str(corpus) and manifest["tokenizer"]["name"] == "byte"
    assert manifest["split_rule"] == "hash" and manifest["gptscratch_version"]
    total_docs = 0
    for split in ("train", "val"):
        info = manifest["splits"][split]
        assert info["documents"] >= 1 and sum(s["tokens"] for s in info["shards"]) == info["tokens"]
        for shard in info["shards"]:
            data = (dataset.path / shard["file"]).read_bytes()
            assert hashlib.sha256(data).hexdigest() == shard["sha256"] and len(data) == 2 * shard["tokens"]
        total_docs += info["documents"]
    assert total_docs == len(DOCS)
    expected_tokens = sum(len(text.encode()) + 1 for text in DOCS.values())  # bytes + one EOT each
    assert dataset.num_tokens("train") + dataset.num_tokens("val") == expected_tokens
    dataset.verify()
    assert sorted(p.name for p in dataset.path.iterdir()) == ["manifest.json", "train-00000.bin", "val-00000.bin"]


def test_documents_are_eot_separated_and_split_by_hash(corpus):
    dataset = prepare(str(corpus), "byte")
    tok = dataset.tokenizer
    train, val = (documents_between_eots(dataset.tokens(s), tok) for s in ("train", "val"))
    routes = assign_splits(sorted(DOCS))
    assert train == [DOCS[d] for d in sorted(DOCS) if routes[d] == "train"]
    assert val == [DOCS[d] for d in sorted(DOCS) if routes[d] == "val"]
    assert isinstance(dataset.tokens("train"), np.memmap)


def test_split_is_stable_when_documents_are_added():
    ids = [f"notes/file{i}.md" for i in range(200)]
    before = assign_splits(ids)
    after = assign_splits(ids + [f"new/extra{i}.md" for i in range(100)])
    assert all(after[i] == before[i] for i in ids)
    assert 0.04 < sum(v == "val" for v in before.values()) / len(ids) < 0.2
    assert before == assign_splits(list(reversed(ids)))  # order-independent


def test_split_guarantees_both_sides_with_two_documents():
    for pair in (["a", "b"], ["x.txt", "y.txt"], ["1", "2"]):
        assert sorted(assign_splits(pair).values()) == ["train", "val"]


def test_single_file_is_split_by_position(tmp_path):
    text = "one long document. " * 50
    file = tmp_path / "book.txt"
    file.write_text(text)
    dataset = prepare(str(file), "byte")
    assert dataset.name == "book-byte" and dataset.manifest["split_rule"] == "position"
    stream = np.concatenate([dataset.tokens("train"), dataset.tokens("val")])
    assert stream[0] == 256 and bytes(stream[1:].astype(np.uint8)) == text.encode()
    assert dataset.num_tokens("train") == int(len(stream) * 0.9)
    assert not list(dataset.path.glob("all-*"))  # temporary stream shards are gone


def test_multiple_shards_read_as_one_sequence(corpus):
    dataset = prepare(str(corpus), "byte", name="small-shards", shard_tokens=100)
    shards = dataset.manifest["splits"]["train"]["shards"]
    assert len(shards) > 3 and all(s["tokens"] <= 100 for s in shards)
    files = np.concatenate([np.fromfile(dataset.path / s["file"], dtype="<u2") for s in shards])
    view = dataset.tokens("train")
    assert isinstance(view, ConcatenatedTokens) and len(view) == len(files)
    np.testing.assert_array_equal(view[95:215], files[95:215])  # spans shard boundaries
    assert view[-1] == files[-1] and np.array_equal(np.asarray(view), files)


def test_large_vocab_uses_uint32(tmp_path):
    write_corpus(tmp_path / "src", {"a.txt": "héllo 漢字 🎉 " * 20, "b.md": "world " * 30})
    dataset = prepare(str(tmp_path / "src"), "cl100k_base")
    assert dataset.name == "src-cl100k_base" and dataset.manifest["dtype"] == "uint32"
    shard = dataset.manifest["splits"]["train"]["shards"][0]
    assert (dataset.path / shard["file"]).stat().st_size == 4 * shard["tokens"]
    assert dataset.tokens("train").dtype == np.dtype("<u4")


def test_char_tokenizer_vocab_saved_in_manifest(corpus):
    dataset = prepare(str(corpus), "char")
    chars = dataset.manifest["tokenizer"]["chars"]
    assert chars == sorted(set("".join(DOCS.values())))
    reopened = open_dataset("notes-char")
    assert reopened.tokenizer.vocab_size == len(chars) + 1
    assert documents_between_eots(reopened.tokens("val"), reopened.tokenizer)[0] in DOCS.values()


def test_builtin_source_needs_no_files():
    dataset = prepare("builtin", "byte")
    assert dataset.name == "builtin-byte" and dataset.source == "builtin"
    assert dataset.num_documents("train") + dataset.num_documents("val") > 50
    assert dataset.num_tokens("val") > 1000


def test_glob_and_folder_filtering(tmp_path):
    write_corpus(tmp_path / "mix", {"a.md": "alpha", "sub/b.rst": "beta", "c.bin": "gamma", ".git/d.txt": "delta"})
    folder = prepare(str(tmp_path / "mix"), "byte", name="mix")
    texts = set(documents_between_eots(folder.tokens("train"), folder.tokenizer))
    texts |= set(documents_between_eots(folder.tokens("val"), folder.tokenizer))
    assert texts == {"alpha", "beta"}
    globbed = prepare(str(tmp_path / "mix" / "**" / "*.rst"), "byte", name="rst-only")
    assert globbed.num_documents("train") == 1 and globbed.manifest["split_rule"] == "position"


def assert_data_folder_clean():
    root = paths.data_root()
    assert not root.exists() or list(root.iterdir()) == []


@pytest.mark.parametrize(
    "files, message",
    [
        (None, "does not exist"),
        ({}, "no text files"),
        ({"a.txt": "", "b.txt": ""}, "no text"),
        ({"a.txt": "fine text", "b.txt": "bin\x00ary"}, "b.txt looks binary"),
    ],
)
def test_bad_sources_raise_usage_error_and_leave_nothing(tmp_path, files, message):
    source = tmp_path / "src"
    if files is not None:
        source.mkdir()
        write_corpus(source, files)
    with pytest.raises(UsageError, match=message):
        prepare(str(source), "byte")
    assert_data_folder_clean()


def test_non_utf8_file_is_named(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "good.txt").write_text("ok")
    (tmp_path / "src" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(UsageError, match="latin1.txt is not valid UTF-8"):
        prepare(str(tmp_path / "src"), "char")
    with pytest.raises(UsageError, match="latin1.txt is not valid UTF-8"):
        prepare(str(tmp_path / "src"), "byte")
    assert_data_folder_clean()


def test_name_conflicts_need_overwrite(tmp_path, corpus):
    prepare(str(corpus), "byte", name="shared")
    other = write_corpus(tmp_path / "other", {"x.txt": "other text here"})
    with pytest.raises(UsageError, match="--overwrite"):
        prepare(str(other), "byte", name="shared")
    assert open_dataset("shared").source == str(corpus)  # untouched
    replaced = prepare(str(other), "byte", name="shared", overwrite=True)
    assert replaced.source == str(other) and replaced.num_documents("train") == 1
    with pytest.raises(UsageError, match="invalid dataset name"):
        prepare(str(other), "byte", name="../escape")
    assert [d.name for d in list_datasets()] == ["shared"]
    assert sorted(p.name for p in paths.data_root().iterdir()) == ["shared"]  # no temp/old folders


def test_resolve_dataset_by_name_path_and_source(corpus):
    prepared = resolve_dataset(str(corpus), None)  # a source: prepared under its default name
    assert prepared.name == "notes-byte"
    created = prepared.manifest["created"]
    assert resolve_dataset(str(corpus), "byte").manifest["created"] == created  # unchanged -> re-used
    assert resolve_dataset("notes-byte", None).path == prepared.path
    assert resolve_dataset(str(prepared.path), "byte").path == prepared.path
    with pytest.raises(UsageError, match="data prepare .* --tokenizer char"):
        resolve_dataset("notes-byte", "char")
    assert resolve_dataset(str(corpus), "char").name == "notes-char"
    (corpus / "added.txt").write_text("a new document")
    refreshed = resolve_dataset(str(corpus), None)  # source changed -> prepared again
    assert sum(refreshed.num_documents(s) for s in ("train", "val")) == len(DOCS) + 1
    with pytest.raises(UsageError, match="neither a prepared dataset nor an existing path"):
        resolve_dataset("no-such-dataset", None)


def test_split_text_keeps_pieces_small_and_lossless():
    text = "".join(f"line {i} é\n" for i in range(1000))
    pieces = split_text(text, 100)
    assert "".join(pieces) == text and all(len(p) <= 100 for p in pieces)
    assert all(p.endswith("\n") for p in pieces[:-1])


# --- sampling -------------------------------------------------------------------------


@pytest.fixture
def dataset(corpus):
    return prepare(str(corpus), "byte")


def test_sampler_batches_are_shifted_windows_and_deterministic(dataset):
    first = WindowSampler(dataset, "train", batch_size=4, context_length=16, seed=7)
    second = WindowSampler(dataset, "train", batch_size=4, context_length=16, seed=7)
    tokens = np.asarray(dataset.tokens("train"))
    for _ in range(3):
        x, y = first.next_batch()
        x2, y2 = second.next_batch()
        assert x.shape == y.shape == (4, 16) and x.dtype == y.dtype == torch.int64
        assert x.equal(x2) and y.equal(y2) and x[:, 1:].equal(y[:, :-1])
        for row in x.numpy():
            assert any(np.array_equal(tokens[o : o + 16], row) for o in np.flatnonzero(tokens == row[0]))
    other_seed = WindowSampler(dataset, "train", batch_size=4, context_length=16, seed=8)
    assert not other_seed.next_batch()[0].equal(WindowSampler(dataset, "train", 4, 16, seed=7).next_batch()[0])


def test_sampler_resumes_exactly(dataset):
    sampler = WindowSampler(dataset, "train", batch_size=3, context_length=8, seed=1)
    for _ in range(5):
        sampler.next_batch()
    state = sampler.state_dict()
    expected = [sampler.next_batch()[0] for _ in range(3)]
    resumed = WindowSampler(dataset, "train", batch_size=3, context_length=8, seed=1)
    resumed.load_state_dict(state)
    assert all(resumed.next_batch()[0].equal(e) for e in expected)
    replayed = WindowSampler(dataset, "train", batch_size=3, context_length=8, seed=1)
    replayed.load_state_dict({"seed": 1, "batches_drawn": state["batches_drawn"]})  # JSON-only state
    assert all(replayed.next_batch()[0].equal(e) for e in expected)


def test_ranks_draw_disjoint_slices_of_one_stream(dataset):
    whole = WindowSampler(dataset, "train", batch_size=4, context_length=8, seed=3)
    ranks = [WindowSampler(dataset, "train", 2, 8, seed=3, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        combined = torch.cat([r.next_batch()[0] for r in ranks])
        assert combined.equal(whole.next_batch()[0])


def test_eval_batches_are_deterministic_and_validated(dataset):
    run1 = [x for x, _ in eval_batches(dataset, "val", 2, 8, num_batches=3)]
    run2 = [x for x, _ in eval_batches(dataset, "val", 2, 8, num_batches=3)]
    assert len(run1) == 3 and all(a.equal(b) for a, b in zip(run1, run2))
    with pytest.raises(UsageError, match="smaller --context-length"):
        WindowSampler(dataset, "val", 2, dataset.num_tokens("val") + 5, seed=0)
    with pytest.raises(UsageError):
        WindowSampler(dataset, "train", 2, 8, seed=0, rank=2, world_size=2)
