"""Tokenizers from a model folder's `tokenizer.json`, run by the Hugging Face `tokenizers` library ("hf-json").

Llama, TinyLlama, SmolLM2, Qwen2/2.5/3 and Mistral ship their tokenizer as one `tokenizer.json` holding the
whole pipeline: a normalizer (Qwen: NFC; Llama 2: spaces → "▁"), a pre-tokenizer (a split regex and GPT-2's
byte → character table), a BPE model (Llama 2: falling back to `<0xAB>` byte tokens for unknown characters),
the added tokens, a post-processor (Llama's BOS) and a decoder. tiktoken runs only the GPT-2 kind (hf_bpe.py);
`tokenizers` is the reference implementation of all of them, so the file is handed to it as it is and this
module only fits the result to the contract of base.py:

- `encode(text)` gives the text's own ids, equal to `transformers.AutoTokenizer.from_pretrained(folder,
  split_special_tokens=True)(text, add_special_tokens=False)`. No BOS: encode serves training data (documents
  joined by EOT), answers and continuations, where a BOS in the middle would be wrong. A special token's string
  typed in the text ("<|im_start|>", "</s>") stays ordinary text, as in every gptscratch tokenizer; non-special
  added tokens (Qwen's "<tool_call>") are matched, as transformers does.
- `bos_id`: the token transformers puts in front of a text (`add_special_tokens=True`): `<s>` for Llama 2 and
  TinyLlama, `<|begin_of_text|>` for Llama 3, None for Qwen and SmolLM2. `prompt_ids` puts it first, so a
  prompt is conditioned on exactly what transformers would feed the model. Where tokenizer_config.json sets
  `add_bos_token`, that flag decides (transformers rebuilds its post-processor from it); otherwise the
  post-processor in tokenizer.json does.
- `eot_id`: tokenizer_config.json's `eos_token` (Qwen2.5 and SmolLM2 `<|endoftext|>`, their -Instruct models
  `<|im_end|>`, TinyLlama `</s>`).
- `decode(ids)` is the library's decode, which is transformers' decode of the same ids (special tokens kept, no
  clean-up of spaces): a Llama 2-style decoder drops the one space its pre-tokenizer put before the first word.
  `decode_bytes(ids)` joins each token's own bytes (byte-level characters mapped back, `<0xAB>` as that byte,
  "▁" as a space), without that sequence-level strip: a stream decodes one token at a time, a token can be half
  a UTF-8 character, and a continuation's first space is real.

One known difference: for a folder whose tokenizer_config.json names `LlamaTokenizer`, transformers 5 does not
run the file's pipeline but rebuilds Llama's own (a "▁" prepended only when the text does not start with a
space), so a text *starting* with a space gets one "▁" fewer there than here. This module follows the file,
which reproduces the SentencePiece model the weights were trained with (and what transformers 4 and llama.cpp
give).

`tokenizers` is imported only when a folder is loaded, so importing this module stays cheap.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from gptscratch.errors import TokenizerError

from .base import EOT_TEXT, Tokenizer, invalid_id_error
from .files import HF_JSON, existing_folder
from .hf_bpe import bytes_to_unicode

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_FILE = "special_tokens_map.json"
_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # a byte-fallback token
_BYTE_OF_CHAR = {char: byte for byte, char in bytes_to_unicode().items()}


def _read_json(path: Path) -> tuple[dict, str]:
    """(the parsed object, the text) of a JSON file; TokenizerError (one line) when it is not a JSON object."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"cannot read tokenizer file {path} ({exc}); re-download or re-convert the model") \
            from None
    if not isinstance(data, dict):
        raise TokenizerError(f"tokenizer file {path} is not a JSON object; re-download or re-convert the model")
    return data, text


def _token_text(value) -> str | None:
    """A token as tokenizer_config.json writes it: a string, or {"content": ...} (older files), or null."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) and value else None


def _decoder_steps(decoder: dict | None) -> list[dict]:
    """The decoder of tokenizer.json as a flat list of steps (a Sequence unpacked)."""
    if not decoder:
        return []
    if decoder.get("type") == "Sequence":
        return [step for inner in decoder.get("decoders") or [] for step in _decoder_steps(inner)]
    return [decoder]


def _bos_id(backend, config: dict) -> int | None:
    """The id transformers puts in front of a text, or None (see the module docstring)."""
    bos = _token_text(config.get("bos_token"))
    if "add_bos_token" in config:
        return backend.token_to_id(bos) if config["add_bos_token"] and bos else None
    probe = "Hello"
    plain = backend.encode(probe, add_special_tokens=False).ids
    framed = backend.encode(probe, add_special_tokens=True).ids
    for start in range(len(framed) - len(plain) + 1):
        if framed[start:start + len(plain)] == plain:
            return framed[start - 1] if start else None
    return None


class _Loaded:
    """What one folder's files give, shared by every tokenizer built from that folder in this process."""

    def __init__(self, folder: Path):
        try:
            from tokenizers import Tokenizer as Backend
        except ImportError:
            raise TokenizerError("reading tokenizer.json needs the `tokenizers` package; "
                                 "pip install tokenizers") from None

        path = folder / TOKENIZER_FILE
        document, text = _read_json(path)
        try:
            self.backend = Backend.from_str(text)
        except Exception as exc:  # noqa: BLE001 - the library raises plain Exceptions for malformed pipelines
            raise TokenizerError(f"cannot read tokenizer file {path} ({exc}); re-download or re-convert the "
                                 "model") from None
        self.backend.encode_special_tokens = True  # special-token strings in a text are ordinary text
        config = _read_json(folder / CONFIG_FILE)[0] if (folder / CONFIG_FILE).is_file() else {}
        eos = _token_text(config.get("eos_token"))
        if eos is None and (folder / SPECIAL_TOKENS_FILE).is_file():
            eos = _token_text(_read_json(folder / SPECIAL_TOKENS_FILE)[0].get("eos_token"))
        eos = eos or EOT_TEXT
        eot_id = self.backend.token_to_id(eos)
        if eot_id is None:
            raise TokenizerError(f"{folder} has no end-of-text token {eos!r}; gptscratch needs one to separate "
                                 "documents (set eos_token in tokenizer_config.json)")
        self.eot_id = eot_id
        self.bos_id = _bos_id(self.backend, config)
        self.vocab_size = max(self.backend.get_vocab(with_added_tokens=True).values()) + 1
        self.decoder_steps = _decoder_steps(document.get("decoder"))
        self.token_bytes: dict[int, bytes] = {}


_CACHE: dict[tuple, _Loaded] = {}  # parsing a 150k-token tokenizer.json takes a few tenths of a second


def _load(folder: Path) -> _Loaded:
    if not (folder / TOKENIZER_FILE).is_file():
        raise TokenizerError(f"{folder} has no {TOKENIZER_FILE}; pass a model folder that holds one "
                             "(re-download the model)")
    stamps = tuple((folder / name).stat().st_mtime_ns if (folder / name).is_file() else None
                   for name in (TOKENIZER_FILE, CONFIG_FILE, SPECIAL_TOKENS_FILE))
    key = (folder, stamps)
    if key not in _CACHE:
        _CACHE[key] = _Loaded(folder)
    return _CACHE[key]


class HfJsonTokenizer(Tokenizer):
    """A model's own tokenizer.json run by the `tokenizers` library (see the module docstring)."""

    name = HF_JSON

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser().resolve()
        self._loaded = _load(self.folder)
        self.backend = self._loaded.backend
        self.vocab_size = self._loaded.vocab_size
        self.eot_id = self._loaded.eot_id
        self.bos_id = self._loaded.bos_id

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [encoding.ids for encoding in self.backend.encode_batch(list(texts), add_special_tokens=False)]

    def special_tokens(self) -> dict[str, int]:
        """The file's added tokens (`<|im_start|>`, `</s>`, ...): what its chat template writes."""
        return {token.content: index for index, token in self.backend.get_added_tokens_decoder().items()}

    def decode(self, ids: Iterable[int]) -> str:
        ids = self._checked(ids)
        return self.backend.decode(ids, skip_special_tokens=False)

    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        cache = self._loaded.token_bytes
        out = bytearray()
        for token in self._checked(ids):
            if token not in cache:
                cache[token] = self._token_bytes(token)
            out += cache[token]
        return bytes(out)

    def spec(self) -> dict:
        return {**super().spec(), "path": str(self.folder)}

    def _checked(self, ids: Iterable[int]) -> list[int]:
        ids = [int(token) for token in ids]
        for token in ids:
            if not 0 <= token < self.vocab_size or self.backend.id_to_token(token) is None:
                raise invalid_id_error(token, self)
        return ids

    def _token_bytes(self, token_id: int) -> bytes:
        """One token's bytes: the decoder's per-token steps applied to its string (sequence-level steps — Fuse,
        Strip, Metaspace's first-space removal — left out); an unknown step falls back to the library."""
        token = self.backend.id_to_token(token_id)
        for step in self._loaded.decoder_steps:
            kind = step.get("type")
            if kind == "ByteLevel":
                # The library maps a token through the table only when every character is in it; added tokens
                # such as "<|im_end|>" or Phi-2's runs of spaces otherwise stay text.
                if all(char in _BYTE_OF_CHAR for char in token):
                    return bytes(_BYTE_OF_CHAR[char] for char in token)
                return token.encode("utf-8")
            if kind == "ByteFallback" and (match := _BYTE_TOKEN.fullmatch(token)):
                return bytes([int(match[1], 16)])
            if kind == "Replace" and "String" in (step.get("pattern") or {}):
                token = token.replace(step["pattern"]["String"], step.get("content", ""))
            elif kind == "Metaspace":
                token = token.replace(step.get("replacement", "▁"), " ")
            elif kind not in ("ByteFallback", "Fuse", "Strip"):
                return self.backend.decode([token_id], skip_special_tokens=False).encode("utf-8")
        return token.encode("utf-8")


def from_json_spec(spec: dict, base_dir: str | Path | None = None) -> HfJsonTokenizer:
    """Rebuild from a spec; a relative "path" is resolved against `base_dir` (the checkpoint folder)."""
    return HfJsonTokenizer(existing_folder(spec, base_dir))


def looks_like_hf_json(folder: str | Path) -> bool:
    """Does `folder` hold a tokenizer.json?"""
    return (Path(folder) / TOKENIZER_FILE).is_file()
