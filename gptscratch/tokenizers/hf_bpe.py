"""Byte-level BPE tokenizers from a Hugging Face model repo's own files, run by tiktoken.

GPT-2 (and Phi-2, which reuses it) ship their tokenizer as `vocab.json` (token string → id) and `merges.txt`
(one merge "a b" per line, in priority order). The token strings are not raw bytes: GPT-2 maps every byte to a
printable unicode character (`bytes_to_unicode`, so that e.g. the space byte 0x20 becomes "Ġ") before running
BPE. Decoding a token string through the inverse table gives its bytes, and tiktoken wants exactly that:

    mergeable_ranks[token bytes] = id        for the 256 single bytes and every merge result

tiktoken merges the adjacent pair whose *concatenation* has the lowest rank; Hugging Face merges the pair that
comes first in merges.txt. The two agree when ids grow in merge order (true of GPT-2's files and of anything the
`tokenizers` trainer writes), which `load_encoding` checks. The text is first split with GPT-2's regex, the same
one tiktoken's r50k_base uses.

Added tokens (tokenizer.json "added_tokens" / added_tokens.json) come in two kinds:
- special ones such as "<|endoftext|>": never produced from ordinary text (our `encode` contract), but they
  decode;
- non-special ones, such as Phi-2's runs of spaces and tabs (ids 50257..50294): Hugging Face cuts them out of
  the text *before* BPE (longest match first), so `encode` does the same and encodes the pieces in between.

The files travel inside a checkpoint (files.py: {"name": "hf-bpe", "path": "tokenizer", ...}).
`get_tokenizer(folder)` accepts such a folder directly.

tiktoken itself is imported only when a vocabulary is loaded, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from gptscratch.errors import TokenizerError

from .base import EOT_TEXT
from .files import HF_BPE, existing_folder
from .tiktoken_bpe import TiktokenTokenizer

REQUIRED_FILES = ("vocab.json", "merges.txt")
# GPT-2's pre-tokenizer regex (identical to tiktoken's r50k_base pattern).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character table (printable Latin-1 bytes map to themselves)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    table, shift = {b: chr(b) for b in printable}, 0
    for b in range(256):
        if b not in table:
            table[b] = chr(256 + shift)
            shift += 1
    return table


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"cannot read tokenizer file {path} ({exc}); re-download or re-convert the model") \
            from None


def _added_tokens(folder: Path) -> list[tuple[str, int, bool]]:
    """(content, id, special) for every added token the folder declares."""
    if (folder / "tokenizer.json").is_file():
        data = _read_json(folder / "tokenizer.json")
        return [(t["content"], int(t["id"]), bool(t.get("special"))) for t in data.get("added_tokens") or []]
    tokens = {}
    if (folder / "added_tokens.json").is_file():
        tokens = {content: int(i) for content, i in _read_json(folder / "added_tokens.json").items()}
    special = set()
    if (folder / "special_tokens_map.json").is_file():
        for value in _read_json(folder / "special_tokens_map.json").values():
            special.add(value["content"] if isinstance(value, dict) else value)
    return [(content, i, content in special) for content, i in tokens.items()]


def _eot_text(folder: Path) -> str:
    config = folder / "tokenizer_config.json"
    if config.is_file():
        eos = _read_json(config).get("eos_token")
        if isinstance(eos, dict):
            eos = eos.get("content")
        if isinstance(eos, str) and eos:
            return eos
    return EOT_TEXT


def load_encoding(folder: Path):
    """(tiktoken Encoding, non-special added tokens {text: id}, eot id) from vocab.json + merges.txt."""
    import tiktoken

    missing = [name for name in REQUIRED_FILES if not (folder / name).is_file()]
    if missing:
        raise TokenizerError(f"{folder} lacks {', '.join(missing)}; a GPT-2 style tokenizer needs vocab.json and "
                             "merges.txt (re-download the model)")
    vocab: dict[str, int] = _read_json(folder / "vocab.json")
    decoder = {char: byte for byte, char in bytes_to_unicode().items()}
    to_bytes = lambda token: bytes(decoder[c] for c in token)  # noqa: E731
    ranks: dict[bytes, int] = {}
    for char, byte in decoder.items():
        if char in vocab:
            ranks[bytes([byte])] = vocab[char]
    if len(ranks) != 256:
        raise TokenizerError(f"{folder / 'vocab.json'} lacks some of the 256 byte tokens; only byte-level BPE "
                             "vocabularies (GPT-2 style) are supported")
    previous = -1
    for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#version"):
            continue
        left, _, right = line.partition(" ")
        merged = left + right
        if merged not in vocab or not all(c in decoder for c in merged):
            raise TokenizerError(f"merge {line!r} in {folder / 'merges.txt'} yields a token missing from "
                                 "vocab.json; the tokenizer files do not belong together")
        rank = vocab[merged]
        if rank <= previous:
            raise TokenizerError(f"{folder / 'vocab.json'} ids are not in merge order (at {line!r}); "
                                 "tiktoken cannot reproduce this BPE — use vocabularies written by GPT-2 or "
                                 "the `tokenizers` trainer")
        ranks.setdefault(to_bytes(merged), rank)
        previous = rank
    ordinary_ids = set(ranks.values())
    # Whatever else vocab.json holds (GPT-2: "<|endoftext|>") is a special token, as are the added tokens.
    special: dict[str, int] = {token: i for token, i in vocab.items() if i not in ordinary_ids}
    split_on: dict[str, int] = {}
    for content, i, is_special in _added_tokens(folder):
        if not is_special:
            split_on[content] = i
        if ranks.get(content.encode("utf-8")) != i:  # not already an ordinary token with that id
            special[content] = i
    eot_text = _eot_text(folder)
    if eot_text not in special:
        raise TokenizerError(f"{folder} has no end-of-text token {eot_text!r}; gptscratch needs one to separate "
                             "documents")
    encoding = tiktoken.Encoding(name=f"{HF_BPE}:{folder}", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                 special_tokens=special)
    return encoding, split_on, special[eot_text]


_CACHE: dict[Path, tuple] = {}


class HfBpeTokenizer(TiktokenTokenizer):
    """A GPT-2 style BPE read from vocab.json + merges.txt (+ added tokens), encoded by tiktoken."""

    def __init__(self, folder: str | Path):
        folder = Path(folder).expanduser().resolve()
        if folder not in _CACHE:
            _CACHE[folder] = load_encoding(folder)
        encoding, self.added, eot_id = _CACHE[folder]
        super().__init__(HF_BPE, encoding)
        self.folder, self.eot_id = folder, eot_id
        self._added_pattern = (re.compile("(" + "|".join(re.escape(t) for t in sorted(self.added, key=len,
                                                                                       reverse=True)) + ")")
                               if self.added else None)

    def encode(self, text: str) -> list[int]:
        if self._added_pattern is None:
            return super().encode(text)
        return self.encode_batch([text])[0]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        if self._added_pattern is None:
            return super().encode_batch(texts)
        out = []
        for text in texts:
            # re.split with a capturing group alternates: ordinary text, added token, ordinary text, ...
            pieces = self._added_pattern.split(text)
            ordinary = super().encode_batch(pieces[0::2])
            ids: list[int] = []
            for index, piece_ids in enumerate(ordinary):
                ids += piece_ids
                if 2 * index + 1 < len(pieces):
                    ids.append(self.added[pieces[2 * index + 1]])
            out.append(ids)
        return out

    def spec(self) -> dict:
        return {**super().spec(), "path": str(self.folder)}


def from_hf_spec(spec: dict, base_dir: str | Path | None = None) -> HfBpeTokenizer:
    """Rebuild from a spec; a relative "path" is resolved against `base_dir` (the checkpoint folder)."""
    return HfBpeTokenizer(existing_folder(spec, base_dir))


def looks_like_hf_bpe(folder: str | Path) -> bool:
    """Does `folder` hold vocab.json + merges.txt?"""
    folder = Path(folder)
    return all((folder / name).is_file() for name in REQUIRED_FILES)

