"""tokenizer_report(): how well several tokenizers compress the same text, side by side.

For each tokenizer, on the first `max_bytes` of a source (documents whole, in source order):

    bytes_per_token   UTF-8 bytes / tokens: higher is better compression, so shorter sequences for the same text
    tokens_per_word   tokens / whitespace-separated words (English prose with GPT-2's vocabulary: about 1.3)
    ratio_to_first    this tokenizer's token count / the first tokenizer's (below 1: fewer tokens)
    vocab_used        distinct ids that occur / vocabulary size: the rows of the output layer this text exercises
    longest_tokens    the longest tokens that occur, as text

A larger vocabulary buys shorter sequences (attention is O(seq²), and a context window holds more text) at the
price of a larger output layer (vocab × d_model weights, and a softmax over every id at every position) and
rarer, less-trained tokens. nanochat's tok_eval makes the same comparison against GPT-2 and GPT-4.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from gptscratch.data.sources import parse_source
from gptscratch.errors import UsageError
from gptscratch.tokenizers import bpe, get_tokenizer

DEFAULT_MAX_BYTES = 10_000_000
LONGEST = 5


def read_texts(source: str, max_bytes: int, text_field: str = "text", split: str = "train") -> list[str]:
    """The source's documents until `max_bytes` of text are read (the last one whole)."""
    texts, size = [], 0
    for doc in parse_source(source, text_field=text_field, split=split).documents():
        text = bpe.valid_unicode(doc.text)
        texts.append(text)
        size += len(text.encode("utf-8"))
        if size >= max_bytes:
            break
    if size == 0:
        raise UsageError(f"source {source!r} contains no text; add text to it")
    return texts


def tokenizer_report(source: str, tokenizers: Sequence[str], max_bytes: int = DEFAULT_MAX_BYTES,
                     text_field: str = "text", split: str = "train") -> dict:
    """{"source", "bytes", "words", "documents", "tokenizers": [one row per tokenizer, see module docstring]}."""
    if not tokenizers:
        raise UsageError("give at least one --tokenizer to report on")
    if max_bytes < 1:
        raise UsageError(f"--max-bytes must be at least 1, got {max_bytes}")
    texts = read_texts(source, max_bytes, text_field, split)
    size = sum(len(text.encode("utf-8")) for text in texts)
    words = sum(len(text.split()) for text in texts)
    rows = []
    for name in tokenizers:
        tokenizer = get_tokenizer(name, texts=texts if name.strip().lower() == "char" else None)
        counts: Counter[int] = Counter()
        for ids in tokenizer.encode_batch(texts):
            counts.update(ids)
        tokens = sum(counts.values())
        pieces = sorted(((tokenizer.decode_bytes([i]), i) for i in counts), key=lambda p: (-len(p[0]), p[1]))
        rows.append({
            "tokenizer": tokenizer.name if tokenizer.name not in ("hf-bpe", "hf-json") else name,
            "vocab_size": tokenizer.vocab_size, "tokens": tokens,
            "bytes_per_token": size / tokens if tokens else None,
            "tokens_per_word": tokens / words if words else None,
            "ratio_to_first": tokens / rows[0]["tokens"] if rows and rows[0]["tokens"] else 1.0,
            "vocab_used": len(counts) / tokenizer.vocab_size, "distinct_ids": len(counts),
            "longest_tokens": [piece.decode("utf-8", errors="replace") for piece, _ in pieces[:LONGEST]],
        })
    return {"source": source, "bytes": size, "words": words, "documents": len(texts), "tokenizers": rows}
