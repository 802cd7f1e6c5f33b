"""Fast, parallel tokenization of many texts into numpy arrays (the hot loop of prepare()).

`BatchEncoder.encode_batches(batches)` takes an iterator of batches (lists of texts) and yields,
per batch and in order, one uint32 array per text with exactly the ids `tokenizer.encode(text)`
gives. How, per tokenizer family:

- tiktoken: encoding each small document separately is slow (~0.8M tokens/s on 2 cores: the
  per-call overhead dominates), big texts are fast (~3.5M). So texts are joined into ~512k-
  character chunks with the end-of-text marker between them and encoded with the marker
  allowed as a special token: tiktoken cuts the text at special tokens *before* its regex and
  BPE, so each piece gets the ids it would get alone, and the EOT ids in the result show where
  to cut it back into texts. A text that itself contains the marker string is encoded alone
  with `encode_ordinary` (its marker must stay ordinary text). Chunks go to a thread pool
  (tiktoken releases the GIL), one worker per core; the next batch is submitted before the
  current one is handed back, so reading the source and writing shards overlap with encoding.
- byte: the UTF-8 bytes themselves (numpy view, no Python loop).
- char: code points looked up in the sorted vocabulary with `np.searchsorted`; an unknown
  character falls back to `tokenizer.encode`, which raises the UsageError naming it.
- anything else (e.g. a Hugging Face BPE): `tokenizer.encode_batch` per batch.

`text_bytes` counts the UTF-8 bytes of the texts handed back so far (for MB/s and progress).
For tiktoken the workers count them: tiktoken has just converted each chunk to UTF-8, which
CPython caches in the str, so `encode("utf-8")` is then a copy instead of a second conversion.

Memory: at most two batches of text and their ids are alive (a few tens of MB).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from gptscratch.tokenizers import EOT_TEXT, ByteTokenizer, CharTokenizer, Tokenizer

CHUNK_CHARS = 1 << 19


class BatchEncoder:
    """Encode batches of texts with `tokenizer`, in parallel where the tokenizer allows it."""

    def __init__(self, tokenizer: Tokenizer, threads: int | None = None):
        self.tokenizer = tokenizer
        self.threads = max(1, threads or os.cpu_count() or 1)
        self._encoding = getattr(tokenizer, "encoding", None)  # tiktoken.Encoding when there is one
        self._pool: ThreadPoolExecutor | None = None
        self.text_bytes = 0
        if isinstance(tokenizer, CharTokenizer):
            codes = np.array([ord(char) for char in tokenizer.chars], dtype=np.uint32)
            self._char_order = np.argsort(codes)
            self._char_codes = codes[self._char_order]

    def encode_batches(self, batches: Iterable[list], text=lambda item: item) -> Iterator[tuple[list, list[np.ndarray]]]:
        """Yield (batch, encoded texts) per batch, in order, with one batch of lookahead.

        Items of a batch may be any objects; `text(item)` gives the string to encode."""
        pending: deque[tuple[list, list[Future]]] = deque()
        try:
            for batch in batches:
                pending.append((batch, self._submit([text(item) for item in batch])))
                if len(pending) > 1:
                    done, futures = pending.popleft()
                    yield done, self._collect(futures)
            while pending:
                done, futures = pending.popleft()
                yield done, self._collect(futures)
        finally:
            for _, futures in pending:
                for future in futures:
                    future.cancel()

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        return self._collect(self._submit(texts))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> BatchEncoder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- per family --------------------------------------------------------------------------------
    def _submit(self, texts: list[str]) -> list[Future]:
        """Futures that each resolve to (list of arrays, UTF-8 bytes of their texts); the arrays,
        concatenated in order, cover `texts`."""
        if self._encoding is None:
            return [_done(self._encode_simple(texts))]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="gptscratch-encode")
        futures, group, size = [], [], 0
        for text in texts:
            if EOT_TEXT in text:  # must stay ordinary text: encode it on its own
                if group:
                    futures.append(self._pool.submit(self._encode_joined, group))
                    group, size = [], 0
                futures.append(self._pool.submit(self._encode_ordinary, text))
                continue
            group.append(text)
            size += len(text)
            if size >= CHUNK_CHARS:
                futures.append(self._pool.submit(self._encode_joined, group))
                group, size = [], 0
        if group:
            futures.append(self._pool.submit(self._encode_joined, group))
        return futures

    def _encode_joined(self, texts: list[str]) -> tuple[list[np.ndarray], int]:
        joined = EOT_TEXT.join(texts)
        # disallowed_special=(): other special-token strings in a text are ordinary text, as in
        # tokenizer.encode (tiktoken's default would raise on them, after a regex scan of the chunk)
        ids = self._encoding.encode_to_numpy(joined, allowed_special={EOT_TEXT}, disallowed_special=())
        size = _utf8_size(joined) - len(EOT_TEXT) * (len(texts) - 1)
        cuts = np.flatnonzero(ids == self.tokenizer.eot_id)
        if len(cuts) != len(texts) - 1:  # cannot happen unless tiktoken changes its special-token rule
            raise RuntimeError("end-of-text markers did not separate the texts; report this as a bug")
        starts = np.concatenate(([0], cuts + 1))
        stops = np.concatenate((cuts, [len(ids)]))
        return [ids[a:b] for a, b in zip(starts.tolist(), stops.tolist())], size

    def _encode_ordinary(self, text: str) -> tuple[list[np.ndarray], int]:
        return [self._encoding.encode_to_numpy(text, disallowed_special=())], _utf8_size(text)

    def _encode_simple(self, texts: list[str]) -> tuple[list[np.ndarray], int]:
        tok = self.tokenizer
        if isinstance(tok, ByteTokenizer):
            raw = [text.encode("utf-8") for text in texts]
            return [np.frombuffer(data, dtype=np.uint8).astype(np.uint32) for data in raw], sum(map(len, raw))
        size = sum(map(_utf8_size, texts))
        if isinstance(tok, CharTokenizer):
            return [self._encode_chars(text) for text in texts], size
        return [np.asarray(ids, dtype=np.uint32) for ids in tok.encode_batch(list(texts))], size

    def _encode_chars(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
        positions = np.searchsorted(self._char_codes, codes)
        positions[positions == len(self._char_codes)] = 0
        if not np.array_equal(self._char_codes[positions], codes):
            self.tokenizer.encode(text)  # raises the UsageError naming the unknown character
        return self._char_order[positions].astype(np.uint32)

    def _collect(self, futures: list[Future]) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for future in futures:
            arrays, size = future.result()
            out.extend(arrays)
            self.text_bytes += size
        return out


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))  # isascii() is O(1) in CPython


def _done(value) -> Future:
    future: Future = Future()
    future.set_result(value)
    return future
