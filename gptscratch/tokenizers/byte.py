"""The byte tokenizer: the 256 byte values of UTF-8 as ids 0..255, plus EOT = 256 (vocabulary 257).

Any text works (a lone UTF-16 surrogate, which UTF-8 cannot encode, becomes U+FFFD first, as in every gptscratch
tokenizer) and nothing has to be learned or downloaded, and the output layer stays tiny (257 rows instead of
cl100k_base's 100k), which is why the quick preset trains on it. The price is length: one token per byte.
"""

from __future__ import annotations

from collections.abc import Iterable

from .base import EOT_TEXT, Tokenizer, invalid_id_error
from .bpe import valid_unicode


class ByteTokenizer(Tokenizer):
    """UTF-8 bytes as ids 0..255, EOT = 256."""

    name = "byte"
    vocab_size = 257
    eot_id = 256

    def encode(self, text: str) -> list[int]:
        return list(valid_unicode(text).encode("utf-8"))

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        out = bytearray()
        for token in ids:
            token = int(token)
            if token == self.eot_id:
                out += EOT_TEXT.encode()
            elif 0 <= token < 256:
                out.append(token)
            else:
                raise invalid_id_error(token, self)
        return bytes(out)
