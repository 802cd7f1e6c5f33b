"""prepare(): text source -> tokenized train/val shards + manifest, all or nothing.

Pipeline:
 1. list the source's documents (names and sizes only, see sources.py);
 2. assign each document to train or val (rule below);
 3. ("char" only) a first pass over the text builds the vocabulary;
 4. stream the documents: read one, cut it into ~1M-character pieces, batch pieces into ~4M
    characters and encode them with `encode_batch` (tiktoken's threads are only busy on big
    chunks), append EOT + ids to the split's ShardWriter. Memory stays bounded by the batch;
 5. write manifest.json last (atomically), then rename the finished temp folder into place.
    Any failure removes the temp folder, so the data folder never holds a half-written dataset.

Every document is preceded by EOT (as in build-nanogpt), so the model learns that EOT starts
a fresh, unrelated text.

Split rule ("hash"): a document goes to val when the first 8 bytes of sha256(document id),
read as a fraction u in [0, 1), are below VAL_FRACTION (0.1). The id is the path relative to
the source (or the pydoc topic name), so a document's split never depends on which other
documents exist: adding files does not move existing ones. Edge cases with >= 2 documents:
if no document hashes into val, the one with the smallest u goes there (if none lands in
train, the largest u goes to train), so both splits are non-empty; such a fallback document
may move back once more data arrives. Rule "position": a single document (e.g. one file) is
split by position instead -- the first 90% of its token stream is train, the rest val.

Names: the default is "<source stem>-<tokenizer>", e.g. "builtin-byte", "mynotes-cl100k_base".
Preparing an existing name again with the same source and tokenizer rebuilds it (that is how
you refresh after editing files); a different source or tokenizer needs overwrite=True.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from gptscratch import __version__, paths
from gptscratch.atomic import atomic_write_json
from gptscratch.data.dataset import Dataset, check_name, open_dataset, read_manifest
from gptscratch.data.shards import (
    DEFAULT_SHARD_TOKENS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    ConcatenatedTokens,
    ShardWriter,
    open_shard,
    token_dtype,
)
from gptscratch.data.sources import Document, canonical_source, list_documents, source_fingerprint, source_stem
from gptscratch.errors import DataError, UsageError
from gptscratch.tokenizer import CharTokenizer, Tokenizer, canonical_name, get_tokenizer

DEFAULT_DATA_TOKENIZER = "byte"  # tiny vocabulary: by far the fastest to train on a CPU
VAL_FRACTION = 0.1
PIECE_CHARS = 1 << 20
BATCH_CHARS = 4 << 20
Progress = Callable[[dict], None]


def default_name(source: str, tokenizer: str) -> str:
    return f"{source_stem(source)}-{canonical_name(tokenizer)}"


def hash_fraction(doc_id: str) -> float:
    """Stable pseudo-random number in [0, 1) for a document id."""
    return int.from_bytes(hashlib.sha256(doc_id.encode("utf-8")).digest()[:8], "big") / 2**64


def assign_splits(doc_ids: list[str]) -> dict[str, str]:
    """doc id -> "train"/"val" by hash (see module docstring); both non-empty when >= 2 ids."""
    fractions = {doc_id: hash_fraction(doc_id) for doc_id in doc_ids}
    splits = {doc_id: "val" if u < VAL_FRACTION else "train" for doc_id, u in fractions.items()}
    if len(doc_ids) >= 2:
        if "val" not in splits.values():
            splits[min(fractions, key=fractions.get)] = "val"
        if "train" not in splits.values():
            splits[max(fractions, key=fractions.get)] = "train"
    return splits


def prepare(
    source: str,
    tokenizer: str = DEFAULT_DATA_TOKENIZER,
    name: str | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
) -> Dataset:
    """Tokenize `source` into data_root()/<name>/ and return the opened Dataset."""
    emit = progress or (lambda event: None)
    if shard_tokens < 1:
        raise UsageError(f"shard size must be at least 1 token, got {shard_tokens}; pass a positive --shard-tokens")
    tokenizer_name = canonical_name(tokenizer)
    canonical = canonical_source(source)
    documents = [doc for doc in list_documents(source) if doc.size > 0]
    if not documents:
        raise UsageError(f"source {source!r} contains no text (all files are empty); add text to it")
    name = check_name(name or default_name(source, tokenizer_name))
    target = paths.data_root() / name
    _check_existing(target, canonical, tokenizer_name, overwrite)
    emit({"message": f"{len(documents)} documents from {canonical}"})

    if tokenizer_name == "char":
        emit({"message": "building the char vocabulary (first pass over the text)"})
        tok: Tokenizer = CharTokenizer.from_texts(doc.read() for doc in documents)
    else:
        tok = get_tokenizer(tokenizer_name)

    root_existed = paths.data_root().exists()
    paths.data_root().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=paths.data_root()))
    try:
        splits = _write_splits(work, documents, tok, shard_tokens, emit)
        manifest = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "name": name,
            "source": canonical,
            "source_fingerprint": source_fingerprint(documents),
            "tokenizer": tok.spec(),
            "dtype": token_dtype(tok.vocab_size).name,
            "split_rule": "position" if len(documents) == 1 else "hash",
            "splits": splits,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "gptscratch_version": __version__,
        }
        atomic_write_json(work / MANIFEST_NAME, manifest)
        _move_into_place(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if not root_existed:
            _remove_empty_dirs(paths.data_root())
        raise
    return open_dataset(str(target))


def _check_existing(target: Path, source: str, tokenizer_name: str, overwrite: bool) -> None:
    if overwrite or not target.exists():
        return
    try:
        manifest = read_manifest(target)
    except DataError:
        raise UsageError(
            f"{target} exists but is not a readable dataset; pass --overwrite to replace it or choose another --name"
        ) from None
    if manifest.get("source") != source or manifest.get("tokenizer", {}).get("name") != tokenizer_name:
        raise UsageError(
            f"dataset {target.name!r} already exists (source {manifest.get('source')}, tokenizer "
            f"{manifest.get('tokenizer', {}).get('name')}); pass --overwrite to replace it or choose another --name"
        )


def _write_splits(work: Path, documents: list[Document], tok: Tokenizer, shard_tokens: int, emit: Progress) -> dict:
    dtype = token_dtype(tok.vocab_size)
    single = len(documents) == 1
    route = {doc.doc_id: "all" for doc in documents} if single else assign_splits([d.doc_id for d in documents])
    writers = {split: ShardWriter(work, split, dtype, shard_tokens) for split in set(route.values())}
    counts = {"train": 0, "val": 0}
    total_bytes, done_bytes = sum(doc.size for doc in documents), 0
    eot = np.array([tok.eot_id], dtype=dtype)
    for document, first_piece, ids, fraction in _encode_pieces(documents, tok):
        split = route[document.doc_id]
        if first_piece and not (fraction == 1.0 and len(ids) == 0):  # skip documents with no text
            writers[split].write(eot)
            counts["train" if single else split] += 1
        writers[split].write(ids)
        emit({"total": total_bytes, "completed": done_bytes + int(document.size * fraction), "unit": "B",
              "tokens": sum(w.total_tokens for w in writers.values())})
        if fraction == 1.0:
            done_bytes += document.size
    if not sum(counts.values()):
        raise UsageError("the source contains no text (only empty documents); add text to it")
    if single:
        return _split_by_position(work, writers.pop("all"), dtype, shard_tokens)
    result = {}
    for split in ("train", "val"):
        writer = writers.get(split) or ShardWriter(work, split, dtype, shard_tokens)
        result[split] = {"documents": counts[split], "tokens": writer.total_tokens, "shards": writer.close()}
    return result


def _split_by_position(work: Path, stream_writer: ShardWriter, dtype, shard_tokens: int) -> dict:
    """Single document: first 90% of its token stream -> train, the rest -> val (copied in chunks)."""
    shards = stream_writer.close()
    stream = ConcatenatedTokens([open_shard(work / s["file"], dtype, s["tokens"]) for s in shards])
    cut = int(len(stream) * (1 - VAL_FRACTION))
    result = {}
    for split, (start, stop) in {"train": (0, cut), "val": (cut, len(stream))}.items():
        writer = ShardWriter(work, split, dtype, shard_tokens)
        for chunk_start in range(start, stop, 1 << 24):
            writer.write(stream[chunk_start : min(stop, chunk_start + (1 << 24))])
        result[split] = {"documents": 1, "tokens": writer.total_tokens, "shards": writer.close()}
    del stream
    for shard in shards:
        (work / shard["file"]).unlink()
    return result


def _encode_pieces(documents: list[Document], tok: Tokenizer) -> Iterator[tuple[Document, bool, np.ndarray, float]]:
    """Yield (document, is_first_piece, ids, fraction of the document done) in order, encoding in batches."""
    batch: list[tuple[Document, bool, str, float]] = []
    batch_chars = 0
    for document in documents:
        text = document.read()
        end = 0
        for index, piece in enumerate(split_text(text, PIECE_CHARS)):
            end += len(piece)
            batch.append((document, index == 0, piece, end / len(text) if text else 1.0))
            batch_chars += len(piece)
            if batch_chars >= BATCH_CHARS:
                yield from _encode_batch(batch, tok)
                batch, batch_chars = [], 0
    yield from _encode_batch(batch, tok)


def _encode_batch(batch, tok: Tokenizer):
    if not batch:
        return
    encoded = tok.encode_batch([piece for _, _, piece, _ in batch])
    for (document, first, _, fraction), ids in zip(batch, encoded):
        yield document, first, np.asarray(ids, dtype=np.int64), fraction


def split_text(text: str, max_chars: int) -> list[str]:
    """Cut text into pieces of <= max_chars, preferably right after a newline that is followed
    by a non-space character: BPE pre-tokenizers split there anyway, so encoding the pieces
    separately gives the same ids as encoding the whole text. An empty text gives [""]."""
    pieces, start = [], 0
    while len(text) - start > max_chars:
        cut = start + max_chars
        newline = text.rfind("\n", start + max_chars // 2, cut)
        while newline != -1 and text[newline + 1].isspace():
            newline = text.rfind("\n", start + max_chars // 2, newline)
        if newline != -1:
            cut = newline + 1
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:])
    return pieces


def _move_into_place(work: Path, target: Path) -> None:
    """Rename the finished folder onto `target`; an existing dataset is swapped out, then removed."""
    if not target.exists():
        os.rename(work, target)
        return
    old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
    os.rename(target, old)
    try:
        os.rename(work, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _remove_empty_dirs(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when empty: we created it for this failed run
    except OSError:
        pass
