"""The chat tokenizer: a base tokenizer plus the special tokens of gptscratch's chat template.

A base model has no way to write "the user's turn ends here": every id it knows is text. Supervised fine-tuning
(gptscratch/training/sft.py) adds a few *special tokens* — ids that no text encodes to — and the template
(gptscratch/chat/template.py) puts them around each message:

    <|user|>What is the maximum of 3 8 1?<|end|><|assistant|>8<|end|>

The new ids come after the base vocabulary: with the byte tokenizer (257 ids) they are 257, 258, 259, 260. The
model's embedding and output rows for them are added (or re-initialised) by `gptscratch.chat.prepare_model`, and
this tokenizer — base spec plus the token list — travels in the checkpoint like any other.

`encode` is the base tokenizer's, so "<|user|>" typed by a user stays five characters of text (no forged turns);
only `encode_with_specials`, used on text the template rendered, produces the special ids.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from .base import Tokenizer, invalid_id_error

CHAT_TOKENS = ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")


class ChatTokenizer(Tokenizer):
    """`base` + special tokens at ids base.vocab_size, base.vocab_size + 1, ..."""

    name = "chat"

    def __init__(self, base: Tokenizer, special: Sequence[str] = CHAT_TOKENS):
        self.base, self.special = base, tuple(special)
        self.special_ids = {token: base.vocab_size + index for index, token in enumerate(self.special)}
        self.vocab_size = base.vocab_size + len(self.special)
        self.eot_id, self.bos_id = base.eot_id, base.bos_id

    def special_tokens(self) -> dict[str, int]:
        return {**self.base.special_tokens(), **self.special_ids}

    def encode(self, text: str) -> list[int]:
        return self.base.encode(text)

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return self.base.encode_batch(texts)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        out, run = bytearray(), []
        for token in ids:
            token = int(token)
            if token >= self.base.vocab_size:
                if token >= self.vocab_size:
                    raise invalid_id_error(token, self)
                out += self.base.decode_bytes(run) + self.special[token - self.base.vocab_size].encode()
                run = []
            else:
                run.append(token)
        return bytes(out + self.base.decode_bytes(run))

    def decode(self, ids: Iterable[int]) -> str:
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def spec(self) -> dict:
        return {**super().spec(), "base": self.base.spec(), "special": list(self.special)}
