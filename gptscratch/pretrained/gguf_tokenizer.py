"""A gptscratch tokenizer as llama.cpp's tokenizer metadata (`tokenizer.ggml.*`), for the GGUF export.

llama.cpp runs byte-level BPE — GPT-2's algorithm, `tokenizer.ggml.model = "gpt2"` — from four arrays:

    tokens      id → token string, its bytes spelled with GPT-2's byte → printable-character table (" " = "Ġ")
    token_type  id → 1 normal, 3 control (never produced from text: <|endoftext|>, chat tokens), 4 user-defined
                (cut out of the text before BPE, as transformers does: Phi-2's runs of spaces), 5 unused (padding)
    merges      "left right" pairs in priority order: a word's adjacent pair of lowest rank is merged first
    pre         the name of the split regex applied before BPE (llama.cpp carries its own code for each)

so a tokenizer exports when its ids come from such a BPE and llama.cpp knows its split regex:

    gptscratch tokenizer             pre         merges
    byte                             gpt-2       none: the 256 single bytes (one placeholder, below)
    char                             gpt-2       each multi-byte character's bytes joined left to right
    r50k_base (gpt2), p50k_base      gpt-2       recovered from tiktoken's ranks (hf_tokenizer.py, as for HF)
    cl100k_base                      llama-bpe   recovered; llama.cpp's Llama 3 split is cl100k's regex
    o200k_base                       gpt-4o      recovered
    trained BPE, --pattern gpt2/gpt4 gpt-2 / llama-bpe
    hf-bpe (vocab.json + merges.txt) gpt-2       merges.txt as it is; non-special added tokens user-defined
    hf-json (tokenizer.json)         ByteLevel → gpt-2; Digits + ByteLevel → smollm; Qwen2's split → qwen2;
                                     Llama 3's split → llama-bpe; the file's merges as they are
    chat over any of these           the base's; chat tokens are control tokens

The chat template gptscratch would use goes along (`tokenizer.chat_template`): its own for a chat tokenizer, a
converted model's Jinja template from its tokenizer files.

Refused in one line: a trained BPE split with "none" or a regex of its own, a tokenizer.json that is not
byte-level BPE (SentencePiece-style Llama 2 / TinyLlama) or splits another way, a vocabulary larger than the
model's output layer. Ids the model has beyond the tokenizer's (vocab_size rounded up) become "[PAD{id}]".

Why the split regex matters and ignore_merges does not (mostly): tiktoken returns a word that is itself a token
whole ("ignore merges"); llama.cpp does so only for llama-bpe. Plain BPE reaches the same token whenever every
token is the result of its own merge — true of GPT-2's vocabulary and of everything a BPE trainer writes — so
only a tokenizer.json whose `ignore_merges` disagrees with its pre-tokenizer's is refused.

Two differences remain by design, as in the HF export: llama.cpp skips a character outside a char vocabulary
where gptscratch refuses the text, and it does not apply a tokenizer.json's NFC normaliser (Qwen's), so only
text already in NFC (nearly all text) is guaranteed the same ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from gptscratch.errors import UsageError
from gptscratch.tokenizers import (EOT_TEXT, ByteTokenizer, CharTokenizer, HfBpeTokenizer, HfJsonTokenizer,
                                   TiktokenTokenizer, TrainedTokenizer)
from gptscratch.tokenizers.bpe import PATTERNS
from gptscratch.tokenizers.chat import ChatTokenizer
from gptscratch.tokenizers.hf_bpe import GPT2_PATTERN, bytes_to_unicode

from .hf_tokenizer import CHAT_TEMPLATE, tokenizer_json

NORMAL, CONTROL, USER_DEFINED, UNUSED = 1, 3, 4, 5   # gguf.TokenType values
TIKTOKEN_PRE = {"r50k_base": "gpt-2", "p50k_base": "gpt-2", "cl100k_base": "llama-bpe", "o200k_base": "gpt-4o"}
PATTERN_PRE = {PATTERNS["gpt2"]: "gpt-2", GPT2_PATTERN: "gpt-2", PATTERNS["gpt4"]: "llama-bpe"}
# tokenizer.json split regexes llama.cpp implements (Llama 3's and Qwen2's, as their files write them).
SPLIT_PRE = {
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+": "llama-bpe",
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|"
    r"\s+(?!\S)|\s+": "qwen2",
}
# llama.cpp's BPE needs a merges array and gguf-py cannot write an empty one: a vocabulary without merges (byte,
# an ASCII char vocabulary) gets this pair instead. A symbol is one byte-level character or a merge of them, so
# a 13-character symbol never exists and the pair never applies.
PLACEHOLDER_MERGE = f"{EOT_TEXT} {EOT_TEXT}"


@dataclass
class GgufVocab:
    """What `tokenizer.ggml.*` holds (module docstring); tokens and types have one entry per model row."""

    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    eos_id: int
    bos_id: int
    add_bos: bool
    chat_template: str | None = None


def _spell(piece: bytes) -> str:
    table = bytes_to_unicode()
    return "".join(table[b] for b in piece)


def _refuse(tokenizer, why: str) -> UsageError:
    return UsageError(f"cannot write the {tokenizer.name} tokenizer into GGUF: {why}")


def _char_tables(tokenizer: CharTokenizer) -> tuple[dict[str, int], list[str], list]:
    """A char vocabulary as byte-level BPE: each character spelled as its UTF-8 bytes, and merges that join the
    bytes of every multi-byte character left to right (é = C3 A9: "Ã ©"). A merge never crosses characters."""
    vocab, merges = {}, {}
    for char, token_id in tokenizer.char_to_id.items():
        piece = char.encode("utf-8")
        vocab[_spell(piece)] = token_id
        for end in range(1, len(piece)):
            merges.setdefault(f"{_spell(piece[:end])} {_spell(piece[end:end + 1])}", None)
    return vocab, list(merges), [(EOT_TEXT, tokenizer.eot_id, True)]


def _hf_bpe_tables(tokenizer: HfBpeTokenizer) -> tuple[dict[str, int], list[str], list]:
    """vocab.json and merges.txt as they are; added tokens as hf_bpe.py reads them: the ones it cuts out of the
    text first are user-defined, the rest (<|endoftext|>, ...) control."""
    folder, encoding = tokenizer.folder, tokenizer.encoding
    vocab = json.loads((folder / "vocab.json").read_text(encoding="utf-8"))
    merges = [line for line in (folder / "merges.txt").read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#version")]
    added = [(text, token_id, False) for text, token_id in tokenizer.added.items()]
    added += [(text, encoding.encode_single_token(text), True) for text in sorted(encoding.special_tokens_set)
              if text not in tokenizer.added]
    return vocab, merges, added


def _json_pre(document: dict) -> str | None:
    """The llama.cpp pre-tokenizer equal to a tokenizer.json's normaliser + pre-tokenizer, or None."""
    normalizer = document.get("normalizer")
    if normalizer is not None and normalizer.get("type") != "NFC":
        return None
    pre = document.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    last = steps[-1] if steps else {}
    if kinds[-1:] != ["ByteLevel"] or last.get("add_prefix_space"):
        return None
    if kinds == ["ByteLevel"] and last.get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and last.get("use_regex", True):
        return "smollm"
    if kinds == ["Split", "ByteLevel"] and not last.get("use_regex", True) and not steps[0].get("invert") \
            and steps[0].get("behavior") == "Isolated":
        return SPLIT_PRE.get((steps[0].get("pattern") or {}).get("Regex"))
    return None


def _hf_json_tables(tokenizer: HfJsonTokenizer) -> tuple[dict[str, int], list[str], list, str]:
    document = json.loads((tokenizer.folder / "tokenizer.json").read_text(encoding="utf-8"))
    model = document.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or model.get("continuing_subword_prefix"):
        raise _refuse(tokenizer, "its tokenizer.json is not byte-level BPE (a SentencePiece-style vocabulary, as "
                                 "Llama 2's and TinyLlama's, would need llama.cpp's 'llama' tokenizer)")
    pre = _json_pre(document)
    if pre is None:
        raise _refuse(tokenizer, "its tokenizer.json splits text in a way llama.cpp has no pre-tokenizer for "
                                 "(supported: GPT-2's ByteLevel, SmolLM's digits, Qwen2's and Llama 3's regex)")
    if bool(model.get("ignore_merges")) != (pre == "llama-bpe"):
        raise _refuse(tokenizer, f"its ignore_merges={bool(model.get('ignore_merges'))} differs from what "
                                 f"llama.cpp's {pre} pre-tokenizer does")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    added = [(t["content"], int(t["id"]), bool(t.get("special"))) for t in document.get("added_tokens") or []]
    return dict(model.get("vocab") or {}), merges, added, pre


def _tables(tokenizer) -> tuple[dict[str, int], list[str], list[tuple[str, int, bool]], str]:
    """(vocab: spelled token → id, merges, added tokens (content, id, special), pre) or a UsageError."""
    if isinstance(tokenizer, ChatTokenizer):
        vocab, merges, added, pre = _tables(tokenizer.base)
        return vocab, merges, added + [(text, i, True) for text, i in tokenizer.special_ids.items()], pre
    if isinstance(tokenizer, CharTokenizer):
        return (*_char_tables(tokenizer), "gpt-2")
    if isinstance(tokenizer, HfJsonTokenizer):
        return _hf_json_tables(tokenizer)
    if isinstance(tokenizer, HfBpeTokenizer):
        return (*_hf_bpe_tables(tokenizer), "gpt-2")
    if isinstance(tokenizer, TrainedTokenizer):
        pre = PATTERN_PRE.get(tokenizer.pattern)
        if pre is None:
            raise _refuse(tokenizer, f"its split pattern {tokenizer.meta.get('pattern')!r} has no llama.cpp "
                                     "pre-tokenizer; train it with --pattern gpt2 or gpt4")
    elif isinstance(tokenizer, TiktokenTokenizer):
        pre = TIKTOKEN_PRE.get(tokenizer.name)
        if pre is None:
            raise _refuse(tokenizer, "llama.cpp has no pre-tokenizer for its split regex")
    elif isinstance(tokenizer, ByteTokenizer):
        pre = "gpt-2"   # without merges any split gives the same ids
    else:
        raise _refuse(tokenizer, "it has no byte-level BPE form")
    document = tokenizer_json(tokenizer)   # the tables the HF export writes, merges recovered from the ranks
    added = [(t["content"], t["id"], True) for t in document["added_tokens"]]
    return document["model"]["vocab"], document["model"]["merges"], added, pre


def gguf_vocab(tokenizer, vocab_size: int, eos_id: int | None = None, bos_id: int | None = None) -> GgufVocab:
    """The tokenizer metadata for a model with `vocab_size` output rows; UsageError when it cannot be written.

    eos/bos default to the tokenizer's EOT (and BOS, where it prepends one: tokenizer.ggml.add_bos_token)."""
    if tokenizer.vocab_size > vocab_size:
        raise _refuse(tokenizer, f"it has {tokenizer.vocab_size} ids but the model only {vocab_size} output rows")
    vocab, merges, added, pre = _tables(tokenizer)
    tokens: list[str | None] = [None] * vocab_size
    types = [NORMAL] * vocab_size
    for text, token_id in vocab.items():
        if token_id < vocab_size:
            tokens[token_id] = text
    for text, token_id, special in added:
        if token_id < vocab_size:
            tokens[token_id], types[token_id] = text, (CONTROL if special else USER_DEFINED)
    for token_id, text in enumerate(tokens):
        if text is None:
            tokens[token_id], types[token_id] = f"[PAD{token_id}]", UNUSED
    if len(set(tokens)) != len(tokens):
        raise _refuse(tokenizer, "two of its ids have the same token string, which llama.cpp cannot tell apart")
    eos = tokenizer.eot_id if eos_id is None else eos_id
    return GgufVocab(pre=pre, tokens=tokens, types=types, merges=merges or [PLACEHOLDER_MERGE], eos_id=eos,
                     bos_id=tokenizer.bos_id if tokenizer.bos_id is not None else (bos_id if bos_id is not None
                                                                                   else eos),
                     add_bos=tokenizer.bos_id is not None, chat_template=_chat_template(tokenizer))


def _chat_template(tokenizer) -> str | None:
    """The template gptscratch chats with (chat.template.chat_format's choice): its own for a chat tokenizer, a
    pretrained model's Jinja template where its files have one."""
    from gptscratch.chat.template import template_from_folder, tokenizer_folder

    if isinstance(tokenizer, ChatTokenizer):
        return CHAT_TEMPLATE
    folder = tokenizer_folder(tokenizer)
    own = template_from_folder(folder) if folder is not None else None
    return own[0] if own else None


def write_vocab(writer, vocab: GgufVocab) -> None:
    """Add the `tokenizer.ggml.*` keys (and the chat template) to a gguf.GGUFWriter."""
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    writer.add_token_merges(vocab.merges)
    writer.add_bos_token_id(vocab.bos_id)
    writer.add_eos_token_id(vocab.eos_id)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(False)
    if vocab.chat_template:
        writer.add_chat_template(vocab.chat_template)
