"""Writing a dataset shard by shard, so that an interrupted prepare loses at most one shard.

Commit protocol (the manifest is the only truth about what is complete):
 1. tokens are appended to `<split>-NNNNN.bin.partial` files (one per split), buffered in
    ~1M-token blocks, hashing as they go;
 2. when a split's partial shard reaches `shard_tokens` (or the prepare ends), *every* open
    partial shard is committed: flushed, fsynced, renamed to its final name, and the manifest
    is rewritten atomically with the new shard entries {file, tokens, sha256} and the cursor
    (`progress`: next document, tokens of it already written, stream position);
 3. on resume, files the manifest does not list (partials, or a shard renamed just before a
    crash) are deleted and writing continues at the cursor.
Readers only open shards listed in the manifest, so a partial shard is never read as complete;
shards are only ever added, so a training run can read a dataset while it grows.

A split's shards hold exactly `shard_tokens` tokens except the last one of each prepare run
(val shards are committed with the train shard that filled, so they are shorter).
`run_documents` is the loop: documents -> pieces -> parallel encoding -> EOT + ids per
document -> the document's split -> commit when full, stop at the token target.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from gptscratch.atomic import atomic_write_json
from gptscratch.data.encode import BatchEncoder
from gptscratch.data.shards import MANIFEST_NAME, SPLITS, ConcatenatedTokens, ShardWriter, open_shard, shard_file_name
from gptscratch.data.sources.base import Doc, Source
from gptscratch.errors import DataError

PIECE_CHARS = 1 << 20  # longer documents are cut (split_text) so one batch stays bounded
BATCH_CHARS = 4 << 20
FLUSH_TOKENS = 1 << 20
Progress = Callable[[dict], None]


class PartialShard:
    """One shard being written: `<final>.partial`, renamed onto `final` by `commit()`."""

    def __init__(self, final: Path, dtype: np.dtype):
        self.final, self.dtype = final, dtype
        self.temp = final.with_name(final.name + ".partial")
        self.handle = open(self.temp, "wb")
        self.hash = hashlib.sha256()
        self.count = 0
        self.buffer: list[np.ndarray] = []
        self.buffered = 0
        self.limit = np.iinfo(dtype).max

    def append(self, ids: np.ndarray) -> None:
        self.buffer.append(ids)
        self.buffered += ids.size
        self.count += ids.size
        if self.buffered >= FLUSH_TOKENS:
            self.flush()

    def flush(self) -> None:
        """Write the buffered ids: one range check, one conversion and no other copy per ~1M tokens."""
        if self.buffer:
            ids = np.concatenate(self.buffer)
            if self.dtype.itemsize < ids.dtype.itemsize and ids.size and int(ids.max()) > self.limit:
                raise DataError(f"token id {int(ids.max())} does not fit {self.dtype}; this is a bug, please report it")
            data = memoryview(ids.astype(self.dtype, copy=False)).cast("B")
            self.handle.write(data)
            self.hash.update(data)
            self.buffer, self.buffered = [], 0

    def commit(self) -> dict:
        self.flush()
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.temp, self.final)
        return {"file": self.final.name, "tokens": self.count, "sha256": self.hash.hexdigest()}

    def discard(self) -> None:
        self.handle.close()
        self.temp.unlink(missing_ok=True)


class ShardBuilder:
    """Appends tokens to a dataset folder's splits and commits them (see module docstring)."""

    def __init__(self, folder: Path, manifest: dict):
        self.folder, self.manifest = Path(folder), manifest
        self.dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
        self.shard_tokens = int(manifest["shard_tokens"])
        self.open: dict[str, PartialShard] = {}
        self.new_documents = {split: 0 for split in SPLITS}
        self.remove_unlisted_files()

    def remove_unlisted_files(self) -> None:
        listed = {s["file"] for split in SPLITS for s in self.manifest["splits"][split]["shards"]}
        for file in self.folder.iterdir():
            if file.name != MANIFEST_NAME and file.is_file() and file.name not in listed:
                file.unlink()

    def committed_tokens(self) -> int:
        return sum(int(self.manifest["splits"][split]["tokens"]) for split in SPLITS)

    def total_tokens(self) -> int:
        return self.committed_tokens() + sum(part.count for part in self.open.values())

    def documents(self) -> int:
        return sum(int(self.manifest["splits"][s]["documents"]) + self.new_documents[s] for s in SPLITS)

    def room(self, split: str) -> int:
        part = self.open.get(split)
        return self.shard_tokens - (part.count if part else 0)

    def write(self, split: str, ids: np.ndarray) -> None:
        if split not in self.open:
            index = len(self.manifest["splits"][split]["shards"])
            self.open[split] = PartialShard(self.folder / shard_file_name(split, index), self.dtype)
        self.open[split].append(ids)

    def commit(self, progress: dict, complete: bool = False) -> None:
        """Make every open shard permanent and record `progress` (the resume cursor)."""
        for split, part in sorted(self.open.items()):
            if part.count:
                entry = part.commit()
                info = self.manifest["splits"][split]
                info["shards"].append(entry)
                info["tokens"] = int(info["tokens"]) + entry["tokens"]
            else:
                part.discard()
        for split in SPLITS:
            self.manifest["splits"][split]["documents"] += self.new_documents[split]
        self.open, self.new_documents = {}, {split: 0 for split in SPLITS}
        self.manifest["progress"] = progress
        self.manifest["complete"] = complete
        self.manifest["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write_json(self.folder / MANIFEST_NAME, self.manifest)

    def abort(self) -> None:
        for part in self.open.values():
            part.discard()
        self.open = {}


def _pieces(documents: Iterator[Doc]) -> Iterator[list[tuple[Doc, bool, str]]]:
    """Batches of (document, is_first_piece, text piece) of about BATCH_CHARS characters."""
    batch, size = [], 0
    for doc in documents:
        for number, piece in enumerate(split_text(doc.text, PIECE_CHARS) if len(doc.text) > PIECE_CHARS else [doc.text]):
            batch.append((doc, number == 0, piece))
            size += len(piece)
            if size >= BATCH_CHARS:
                yield batch
                batch, size = [], 0
    if batch:
        yield batch


def run_documents(builder: ShardBuilder, source: Source, encoder: BatchEncoder, route: Callable[[Doc], str],
                  target_tokens: int | None, emit: Progress, total_bytes: int | None) -> bool:
    """Continue writing `source` from the manifest's cursor; True when the source is exhausted."""
    cursor = dict(builder.manifest.get("progress") or {})
    start, skip = int(cursor.get("next_document", 0)), int(cursor.get("skip_tokens", 0))
    snapshots = [(cursor["stream_state"], cursor["stream_at"])] if cursor.get("stream_state") is not None else []
    eot = np.array([encoder.tokenizer.eot_id], dtype=np.uint32)
    current, written, last_index = -1, 0, start - 1
    started, bytes_at_start = time.monotonic(), encoder.text_bytes
    tokens_at_start = builder.total_tokens()

    def cursor_at(index: int, tokens_written: int) -> dict:
        usable = [s for s in snapshots if s[1] <= index]
        state, at = usable[-1] if usable else (None, 0)
        del snapshots[: max(0, len(usable) - 1)]
        return {"next_document": index, "skip_tokens": tokens_written, "stream_state": state, "stream_at": at}

    def report() -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        tokens, text_bytes = builder.total_tokens(), encoder.text_bytes - bytes_at_start
        event = {"documents": builder.documents(), "tokens": tokens,
                 "tok/s": round((tokens - tokens_at_start) / elapsed), "MB/s": round(text_bytes / elapsed / 1e6, 1)}
        if target_tokens:
            event.update(total=target_tokens, completed=tokens, unit="tokens")
        elif total_bytes and start == 0:
            event.update(total=total_bytes, completed=min(total_bytes, text_bytes), unit="B")
        else:
            event.update(completed=tokens, unit="tokens")
        emit(event)

    if target_tokens is not None and builder.total_tokens() >= target_tokens:
        return False
    documents = source.documents(start, cursor if snapshots else None)
    for batch, arrays in encoder.encode_batches(_pieces(documents), text=lambda item: item[2]):
        for (doc, first, _), ids in zip(batch, arrays):
            if doc.snapshot is not None:
                snapshots.append(doc.snapshot)
            if doc.index != current:
                current, written, last_index = doc.index, 0, doc.index
            if first:
                ids = np.concatenate((eot, ids))
            if doc.index == start and skip:  # resuming inside this document: drop what is committed
                cut = min(skip, len(ids))
                ids, skip, written = ids[cut:], skip - cut, written + cut
            split = route(doc)
            while len(ids):
                if written == 0:
                    builder.new_documents[split] += 1
                take = min(len(ids), builder.room(split))
                if target_tokens is not None:
                    take = min(take, target_tokens - builder.total_tokens())
                builder.write(split, ids[:take])
                ids, written = ids[take:], written + take
                if target_tokens is not None and builder.total_tokens() >= target_tokens:
                    builder.commit(cursor_at(doc.index, written), complete=False)
                    report()
                    return False
                if builder.room(split) == 0:
                    builder.commit(cursor_at(doc.index, written), complete=False)
        report()
    builder.commit(cursor_at(last_index + 1, 0), complete=True)
    report()
    return True


def build_by_position(builder: ShardBuilder, src: Source, encoder: BatchEncoder, tokens: int | None, emit: Progress,
                      val_fraction: float) -> None:
    """Single document: its token stream goes to temporary all-*.bin shards, then the first
    90% to train and the rest to val (copied in 16M-token chunks: memory stays bounded)."""
    dtype, folder = builder.dtype, builder.folder
    stream_writer = ShardWriter(folder, "all", dtype, builder.shard_tokens)
    eot = np.array([encoder.tokenizer.eot_id], dtype=np.uint32)
    done = False
    for batch, arrays in encoder.encode_batches(_pieces(src.documents()), text=lambda item: item[2]):
        for (doc, first, _), ids in zip(batch, arrays):
            ids = np.concatenate((eot, ids)) if first else ids
            if tokens is not None:
                ids = ids[: max(0, tokens - stream_writer.total_tokens)]
                done = stream_writer.total_tokens + len(ids) >= tokens
            stream_writer.write(ids)
        emit({"tokens": stream_writer.total_tokens, "documents": 1})
        if done:
            break
    shards = stream_writer.close()
    stream = ConcatenatedTokens([open_shard(folder / s["file"], dtype, s["tokens"]) for s in shards])
    cut = int(len(stream) * (1 - val_fraction))
    for split, (start, stop) in {"train": (0, cut), "val": (cut, len(stream))}.items():
        builder.new_documents[split] += 1 if stop > start else 0
        position = start
        while position < stop:
            take = min(stop - position, builder.room(split), 1 << 24)
            builder.write(split, np.asarray(stream[position : position + take]))
            position += take
            if builder.room(split) == 0 and position < stop:
                builder.commit({"next_document": 0, "skip_tokens": 0}, complete=False)
    del stream
    builder.commit({"next_document": 1, "skip_tokens": 0}, complete=not done)
    for shard in shards:
        (folder / shard["file"]).unlink()


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
