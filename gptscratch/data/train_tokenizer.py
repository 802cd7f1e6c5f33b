"""train_tokenizer(): learn a byte-pair encoding from any source `data prepare` accepts, and store it by name.

    source (builtin, files, tables, hf:, ...)  --stream of documents-->  trainer  --merges-->  tokenizers/NAME/

The text is streamed: documents are read one at a time and handed to the trainer, which keeps only the counts
of distinct chunks (see gptscratch/tokenizers/bpe.py). Two trainers learn the same merges:

    "fast"    rustbpe (gptscratch/tokenizers/bpe_fast.py): Rust, all cores — the default
    "python"  the readable loop of gptscratch/tokenizers/bpe.py — seconds on the builtin corpus

Everything is checked before the first document is read (name, vocabulary size, pattern, special tokens), and
the tokenizer is written only when training succeeded, atomically (trained.save): Ctrl-C at any point leaves
the cache as it was.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone

from gptscratch import __version__
from gptscratch.data.sources import parse_source
from gptscratch.errors import UsageError
from gptscratch.tokenizers import EOT_TEXT, bpe, trained
from gptscratch.tokenizers.bpe import BYTES, PATTERNS

Progress = Callable[[dict], None]
TRAINERS = ("fast", "python")


def special_token_list(extra: Sequence[str] = ()) -> list[str]:
    """"<|endoftext|>" then the user's special tokens, each once; UsageError for an empty one, a single byte
    (every byte is already a token) and the chat tokens (`train sft` adds those itself)."""
    from gptscratch.tokenizers.chat import CHAT_TOKENS

    tokens = [EOT_TEXT]
    for token in extra:
        if not token or not token.strip():
            raise UsageError("a special token cannot be empty or blank; pass e.g. --special-tokens '<|sep|>'")
        if len(token.encode("utf-8")) == 1:
            raise UsageError(f"special token {token!r} is a single byte, which is already an ordinary token; choose "
                             "a string that does not occur in the text, e.g. '<|sep|>'")
        if token in CHAT_TOKENS:
            raise UsageError(f"{token} is one of the chat tokens `gptscratch train sft` adds itself; leave it out "
                             f"of --special-tokens")
        if token not in tokens:
            tokens.append(token)
    return tokens


def default_name(source: str, vocab_size: int) -> str:
    """"<source stem>-bpe<vocab size>", the stem cut so that the name stays within the 64 characters allowed."""
    suffix = f"-bpe{vocab_size}"
    return parse_source(source).stem.lower()[:64 - len(suffix)].rstrip("._-") + suffix


def train_tokenizer(source: str, vocab_size: int, name: str | None = None, pattern: str = "gpt4",
                    special_tokens: Sequence[str] = (), trainer: str = "fast", overwrite: bool = False,
                    max_bytes: int | None = None, progress: Progress | None = None, text_field: str = "text",
                    split: str = "train") -> trained.TrainedTokenizer:
    """Train a BPE tokenizer with `vocab_size` ids (256 bytes + merges + special tokens) on `source` and save it
    in the cache as `name` (default "<source>-bpe<vocab_size>"). max_bytes: stop reading after this much text."""
    emit = progress or (lambda event: None)
    if pattern not in PATTERNS:
        raise UsageError(f"unknown split pattern {pattern!r}; choose one of: {', '.join(PATTERNS)}")
    if trainer not in TRAINERS:
        raise UsageError(f"unknown trainer {trainer!r}; choose one of: {', '.join(TRAINERS)}")
    specials = special_token_list(special_tokens)
    smallest = BYTES + len(specials)
    if vocab_size < smallest:
        raise UsageError(f"--vocab-size {vocab_size} is below the base vocabulary ({BYTES} bytes + {len(specials)} "
                         f"special token{'s' if len(specials) > 1 else ''} = {smallest}); pass a larger --vocab-size")
    if max_bytes is not None and max_bytes < 1:
        raise UsageError(f"--max-bytes must be at least 1, got {max_bytes}")
    src = parse_source(source, text_field=text_field, split=split)
    name = name or default_name(source, vocab_size)
    trained.check_available(name, overwrite)  # before reading any text; save() checks again when it writes
    num_merges = vocab_size - smallest
    read = {"bytes": 0, "documents": 0, "reported": 0}
    total = max_bytes or src.total_bytes()

    def report() -> None:
        read["reported"] = read["bytes"]
        emit({"completed": read["bytes"] if total is None else min(read["bytes"], total), "total": total,
              "unit": "B", "documents": read["documents"]})

    def texts() -> Iterator[str]:
        for doc in src.documents():
            text = bpe.valid_unicode(doc.text)
            read["bytes"] += len(text.encode("utf-8"))
            read["documents"] += 1
            if read["bytes"] - read["reported"] >= 1 << 20:  # an event per MiB, not per (possibly tiny) document
                report()
            yield text
            if max_bytes is not None and read["bytes"] >= max_bytes:
                break
        report()

    started = time.monotonic()
    emit({"message": f"training a {vocab_size:,}-token BPE on {src.canonical} ({trainer} trainer, "
                     f"{pattern} split)"})
    if src.kind == "hub" and max_bytes is None:
        emit({"message": f"reading all of {src.canonical}; pass --max-bytes (e.g. 2G) to stop earlier"})
    if trainer == "fast":
        from gptscratch.tokenizers.bpe_fast import train_fast

        merged = train_fast(texts(), num_merges, pattern)
    else:
        counts = bpe.count_chunks(texts(), pattern)
        emit({"message": f"{len(counts):,} distinct chunks; learning {num_merges:,} merges"})
        merges = bpe.train(counts, num_merges,
                           progress=lambda done, all_: emit({"completed": done, "total": all_, "unit": "merges"}))
        merged = bpe.vocabulary(merges)[BYTES:]
    seconds = time.monotonic() - started
    if read["bytes"] == 0:
        raise UsageError(f"source {src.canonical!r} contains no text; add text to it")
    if len(merged) < num_merges:
        most = smallest + len(merged)
        raise UsageError(f"{src.canonical} supports at most {most:,} tokens with the {pattern} split (every chunk of "
                         f"it is then a single token); pass --vocab-size {most} or less, or train on more text")
    learned = set(merged)
    clashes = [token for token in specials if token.encode("utf-8") in learned]
    if clashes:  # it would be both text and a special token: Hugging Face's export could not tell them apart
        raise UsageError(f"special token {clashes[0]!r} is also a token learned from the text; choose a string that "
                         "does not occur in it, e.g. '<|sep|>'")
    info = {"trainer": "rustbpe" if trainer == "fast" else "python", "source": src.canonical,
            "source_bytes": read["bytes"], "documents": read["documents"], "seconds": round(seconds, 3),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "gptscratch_version": __version__}
    tokens = [bytes([b]) for b in range(BYTES)] + merged
    folder = trained.save(name, tokens, pattern, specials, info, overwrite=overwrite)
    return trained.TrainedTokenizer(folder)
