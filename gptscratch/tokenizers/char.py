"""The char tokenizer: one id per distinct character of a corpus (in sorted order), EOT = the last id.

The vocabulary comes from the text itself (`CharTokenizer.from_texts`), so it is part of `spec()` and travels
with the dataset manifest and the checkpoint; a character outside it is refused rather than silently dropped.
Tiny vocabularies suit the synthetic tasks and the classic "train on Shakespeare, character by character".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gptscratch.errors import TokenizerError, UsageError

from .base import EOT_TEXT, Tokenizer, invalid_id_error


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
                raise invalid_id_error(token, self)
        return "".join(pieces)

    def spec(self) -> dict:
        return {**super().spec(), "chars": self.chars}
