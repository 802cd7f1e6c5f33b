"""The tokenizer interface every kind implements: text <-> integer ids, with one end-of-text id.

Every tokenizer maps text to ids 0..vocab_size-1 and reserves one end-of-text (EOT) id that separates documents
in the training stream. The contract the rest of gptscratch relies on:

- `encode` treats "<|endoftext|>" (and any other special token's string, such as "<|im_start|>" or "</s>") in
  the input as ordinary text, never as the special token, so a document that happens to contain that string
  cannot forge a document boundary. It adds nothing around the text: no BOS, no EOT.
- `prompt_ids` is what a model continues from: the text's ids after the BOS of tokenizers whose model expects
  one (`bos_id`: Llama's `<s>`; None elsewhere), and EOT alone for an empty prompt without one.
- `start_id` is the id a document begins after when it is scored or analysed on its own: the BOS where the model
  has one, else EOT (GPT-2's models saw every document after an EOT).
- `decode_bytes` exists for streaming output: byte-level ids can split a UTF-8 sequence, so a streamer
  accumulates bytes and decodes only complete characters.
- EOT decodes to the text "<|endoftext|>" in every built-in kind; a pretrained model's own tokenizer decodes it to
  its end-of-sequence token ("</s>", "<|im_end|>").
- `spec()` is plain JSON that `gptscratch.tokenizers.from_spec` turns back into the same tokenizer; it travels
  in dataset manifests and checkpoints.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from gptscratch.errors import TokenizerError

EOT_TEXT = "<|endoftext|>"


class Tokenizer:
    """Interface shared by all tokenizers (see module docstring)."""

    name: str
    vocab_size: int
    eot_id: int
    bos_id: int | None = None

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    @property
    def start_id(self) -> int:
        """The id before a document's first token: BOS where the model has one, else EOT."""
        return self.bos_id if self.bos_id is not None else self.eot_id

    def prompt_ids(self, text: str) -> list[int]:
        """The ids a model continues from for the prompt `text` (see the module docstring)."""
        ids = ([self.bos_id] if self.bos_id is not None else []) + (self.encode(text) if text else [])
        return ids or [self.eot_id]

    def special_tokens(self) -> dict[str, int]:
        """The special tokens a chat template writes (string → id); `encode` never produces them."""
        return {}

    def encode_with_specials(self, text: str) -> list[int]:
        """Encode a *rendered chat template*: every special token's string becomes its id, the rest is encoded as
        ordinary text. Only for text the program itself rendered — a user's message must go through `encode`,
        so that typing "<|user|>" cannot forge a turn."""
        import re

        specials = self.special_tokens()
        if not specials:
            return self.encode(text)
        pattern = "(" + "|".join(re.escape(s) for s in sorted(specials, key=len, reverse=True)) + ")"
        ids: list[int] = []
        for index, piece in enumerate(re.split(pattern, text)):
            if index % 2:                       # odd pieces are the separators: special tokens
                ids.append(specials[piece])
            elif piece:
                ids.extend(self.encode(piece))
        return ids

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


def invalid_id_error(token: int, tokenizer: Tokenizer) -> TokenizerError:
    """The one-line error for decoding an id outside the tokenizer's vocabulary."""
    return TokenizerError(
        f"token id {token} is not valid for the {tokenizer.name} tokenizer (ids 0..{tokenizer.vocab_size - 1}); "
        "decode ids produced with the same tokenizer"
    )
