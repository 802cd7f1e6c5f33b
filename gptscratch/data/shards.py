"""Token shards: flat binary files of token ids, plus the manifest that describes them.

On-disk layout of a prepared dataset (folder `data_root()/<name>/`):

    train-00000.bin, train-00001.bin, ...   raw little-endian uint16 (vocab <= 65536) or uint32
    val-00000.bin, ...
    manifest.json                           written last; its presence means "complete"

A shard holds at most `shard_tokens` ids (default 100M = 200 MB as uint16). No header: the
manifest records dtype, token count and sha256 per shard, so any tool (numpy.fromfile,
nanoGPT-style loaders) can read the files. Reading uses numpy memmaps, so memory stays flat
whatever the dataset size; `ConcatenatedTokens` presents several shards as one 1-D sequence.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from gptscratch.errors import DataError

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "gptscratch-dataset"
FORMAT_VERSION = 1
DEFAULT_SHARD_TOKENS = 100_000_000
SPLITS = ("train", "val")


def token_dtype(vocab_size: int) -> np.dtype:
    """Smallest unsigned little-endian dtype that holds ids 0..vocab_size-1."""
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<u4")


def shard_file_name(split: str, index: int) -> str:
    return f"{split}-{index:05d}.bin"


class ShardWriter:
    """Appends token arrays to `<split>-NNNNN.bin` files, starting a new file every `shard_tokens`.

    Tracks per-shard token count and sha256 while writing (no second read of the data).
    `close()` returns the manifest entries: [{"file", "tokens", "sha256"}, ...].
    """

    def __init__(self, folder: Path, split: str, dtype: np.dtype, shard_tokens: int = DEFAULT_SHARD_TOKENS):
        if shard_tokens < 1:
            raise ValueError("shard_tokens must be positive")
        self.folder, self.split, self.dtype, self.shard_tokens = Path(folder), split, np.dtype(dtype), shard_tokens
        self.shards: list[dict] = []
        self.total_tokens = 0
        self._handle = None
        self._hash = None
        self._tokens_in_shard = 0

    def write(self, ids) -> None:
        array = np.asarray(ids)
        if array.size and (array.min() < 0 or int(array.max()) > np.iinfo(self.dtype).max):
            raise DataError(f"token id out of range for {self.dtype}; this is a bug, please report it")
        array = array.astype(self.dtype, copy=False)
        while array.size:
            if self._handle is None or self._tokens_in_shard == self.shard_tokens:
                self._open_next()
            room = self.shard_tokens - self._tokens_in_shard
            piece, array = array[:room], array[room:]
            data = piece.tobytes()
            self._handle.write(data)
            self._hash.update(data)
            self._tokens_in_shard += piece.size
            self.total_tokens += piece.size

    def close(self) -> list[dict]:
        self._finish_current()
        return self.shards

    def _open_next(self) -> None:
        self._finish_current()
        name = shard_file_name(self.split, len(self.shards))
        self._handle = open(self.folder / name, "wb")
        self._hash = hashlib.sha256()
        self._tokens_in_shard = 0
        self.shards.append({"file": name, "tokens": 0, "sha256": ""})

    def _finish_current(self) -> None:
        if self._handle is None:
            return
        self._handle.close()
        self.shards[-1].update(tokens=self._tokens_in_shard, sha256=self._hash.hexdigest())
        self._handle = None


def sha256_file(path: Path, block_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def open_shard(path: Path, dtype: np.dtype, tokens: int) -> np.memmap | np.ndarray:
    """Memory-map one shard read-only, checking its size against the manifest."""
    expected = tokens * np.dtype(dtype).itemsize
    try:
        actual = path.stat().st_size
    except FileNotFoundError:
        raise DataError(f"shard {path} is missing; re-prepare the dataset with `gptscratch data prepare`") from None
    if actual != expected:
        raise DataError(
            f"shard {path} has {actual} bytes, the manifest says {expected}; re-prepare the dataset (--overwrite)"
        )
    if tokens == 0:
        return np.zeros(0, dtype=dtype)  # numpy cannot memory-map an empty file
    return np.memmap(path, dtype=dtype, mode="r", shape=(tokens,))


class ConcatenatedTokens:
    """Several 1-D shards seen as one read-only 1-D sequence, without copying them.

    Supports len(), integer indexing and contiguous slices (which may span shards; the result
    is a new ndarray). Shard lookup is a binary search over cumulative lengths: O(log shards).
    """

    def __init__(self, parts: list):
        self.parts = [part for part in parts if len(part)]
        self.dtype = parts[0].dtype if parts else np.dtype("<u2")
        self.starts = np.cumsum([0] + [len(part) for part in self.parts])
        self.shape = (int(self.starts[-1]),)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self))
            if step != 1:
                raise IndexError("ConcatenatedTokens supports contiguous slices only")
            return self._range(start, max(start, stop))
        index = int(key) + (len(self) if int(key) < 0 else 0)
        if not 0 <= index < len(self):
            raise IndexError(f"index {key} out of range for {len(self)} tokens")
        return self._range(index, index + 1)[0]

    def __array__(self, dtype=None, copy=None):
        array = self._range(0, len(self))
        return array if dtype is None else array.astype(dtype)

    def _range(self, start: int, stop: int) -> np.ndarray:
        pieces = []
        part = int(np.searchsorted(self.starts, start, side="right")) - 1
        while start < stop and part < len(self.parts):
            offset = start - int(self.starts[part])
            take = min(stop - start, len(self.parts[part]) - offset)
            pieces.append(np.asarray(self.parts[part][offset : offset + take]))
            start += take
            part += 1
        return np.concatenate(pieces) if pieces else np.zeros(0, dtype=self.dtype)
