"""gptscratch tokenizers → a Hugging Face `tokenizer.json`, so an exported model comes with its tokenizer.

`tokenizer.json` is the `tokenizers` library's file: a pipeline of pre-tokenizer → model → decoder, written
here as plain JSON (no dependency is needed to write it; `transformers.AutoTokenizer` reads it). Every
gptscratch tokenizer has an exact form in it:

- tiktoken encodings (cl100k_base, r50k_base, p50k_base, o200k_base) and tokenizers trained by gptscratch
  (gptscratch/tokenizers/trained.py, run by tiktoken too). tiktoken stores only *ranks*: byte
  string → id, and encodes a word by repeatedly merging the adjacent pair whose concatenation has the lowest
  rank. `tokenizers` wants *merges*: ordered pairs (left, right), applied by the same lowest-first rule. A
  token's merge is the pair tiktoken joins last when it encodes that token's bytes on its own; we find it by
  running that BPE (`gptscratch.tokenizers.bpe.recover_merge`, O(n²) in the token's length; cl100k_base's 100k
  tokens take about a second). Bytes are
  spelled with GPT-2's byte → printable-character table, the encoding's own regex splits words (`Split`
  pre-tokenizer), and `ignore_merges` makes a word that is already a token come out whole, as in tiktoken.
- byte: the 256 byte values as single characters of that table, no merges; ids are the byte values.
- char: the corpus characters, no merges, no pre-tokenizer; a `Fuse` decoder joins the pieces without spaces.

A chat tokenizer (gptscratch/tokenizers/chat.py: a base plus gptscratch's chat tokens) is its base's document with
the chat tokens added as special tokens, and tokenizer_config.json gets a `chat_template` that writes gptscratch's
template (gptscratch/chat/template.py), so `apply_chat_template` in transformers gives the ids gptscratch trained on.

The end-of-text token (and a tiktoken encoding's other special tokens) become added special tokens. Two
differences remain by design: `transformers` reads a special-token string typed in the text ("<|endoftext|>",
and for cl100k "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|endofprompt|>") as that special token,
where gptscratch encodes it as ordinary text; and with `char`, `transformers` silently drops a character
outside the vocabulary, where gptscratch refuses the text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from gptscratch.atomic import atomic_write_text
from gptscratch.tokenizers import EOT_TEXT, ByteTokenizer, CharTokenizer, TiktokenTokenizer
from gptscratch.tokenizers.chat import ChatTokenizer
from gptscratch.tokenizers.bpe import recover_merge
from gptscratch.tokenizers.files import own_hf_files
from gptscratch.tokenizers.hf_bpe import bytes_to_unicode


def _added(content: str, token_id: int) -> dict:
    return {"id": token_id, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": False, "special": True}


def _bpe_model(vocab: dict[str, int], merges: list[str]) -> dict:
    return {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
            "vocab": vocab, "merges": merges}


def _byte_level(use_regex: bool = False) -> dict:
    return {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": use_regex}


def _tiktoken_parts(tokenizer: TiktokenTokenizer) -> tuple[dict, list[dict], dict]:
    encoding = tokenizer.encoding
    special = {text: encoding.encode_single_token(text) for text in encoding.special_tokens_set}
    special_ids = set(special.values())
    ranks: dict[bytes, int] = {}
    for token_id in range(encoding.n_vocab):
        if token_id in special_ids:
            continue
        try:
            ranks[encoding.decode_single_token_bytes(token_id)] = token_id
        except KeyError:  # ids between the ordinary and the special tokens are unused (cl100k: 100256, ...)
            continue
    spell = bytes_to_unicode()
    as_text = lambda piece: "".join(spell[b] for b in piece)  # noqa: E731
    vocab = {as_text(piece): token_id for piece, token_id in ranks.items()}
    merges = []
    for piece, token_id in sorted(ranks.items(), key=lambda item: item[1]):
        if len(piece) > 1 and (merge := recover_merge(ranks, piece)) is not None:
            merges.append(f"{as_text(merge[0])} {as_text(merge[1])}")  # spelled pieces never contain a space
    # The split regex is not public API in tiktoken; every Encoding has carried it as `_pat_str` (a tokenizer trained
    # here records its own, gptscratch/tokenizers/trained.py). `tokenizers`
    # runs Oniguruma, where `{1,3}+` means "one or more runs of 1–3" rather than a possessive {1,3}: the
    # plain {1,3} matches the same pieces here (nothing after it in the branch can make it backtrack).
    regex = getattr(tokenizer, "pattern", None) or encoding._pat_str  # a trained BPE keeps its own
    pattern = re.sub(r"(\{\d+(?:,\d*)?\})\+", r"\1", regex)
    pre_tokenizer = {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
        _byte_level()]}
    added = [_added(text, token_id) for text, token_id in sorted(special.items(), key=lambda item: item[1])]
    return {"model": _bpe_model(vocab, merges), "pre_tokenizer": pre_tokenizer,
            "decoder": _byte_level(use_regex=True)}, added, special


# gptscratch's chat template (gptscratch/chat/template.py, GptScratchFormat) in Jinja, for transformers.
CHAT_TEMPLATE = ("{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] "
                 "+ '<|end|>' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}")


def tokenizer_json(tokenizer) -> dict | None:
    """The `tokenizer.json` document for a gptscratch tokenizer, or None for one that has its own files (hf-bpe,
    hf-json: the export copies those unchanged)."""
    if isinstance(tokenizer, ChatTokenizer):
        document = tokenizer_json(tokenizer.base)
        if document is not None:
            for content, token_id in tokenizer.special_ids.items():
                document["added_tokens"].append(_added(content, token_id))
                document["model"]["vocab"][content] = token_id
        return document
    if isinstance(tokenizer, TiktokenTokenizer) and not own_hf_files(tokenizer.spec()):
        parts, added, _ = _tiktoken_parts(tokenizer)
    elif isinstance(tokenizer, ByteTokenizer):
        vocab = {char: byte for byte, char in bytes_to_unicode().items()}
        parts = {"model": _bpe_model(vocab, []), "pre_tokenizer": _byte_level(), "decoder": _byte_level()}
        added = [_added(EOT_TEXT, tokenizer.eot_id)]
    elif isinstance(tokenizer, CharTokenizer):
        parts = {"model": _bpe_model(dict(tokenizer.char_to_id), []), "pre_tokenizer": None,
                 "decoder": {"type": "Fuse"}}
        added = [_added(EOT_TEXT, tokenizer.eot_id)]
    else:
        return None
    for token in added:  # `tokenizers` keeps an added token's id only when the model's vocabulary holds it too
        parts["model"]["vocab"][token["content"]] = token["id"]
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added, "normalizer": None,
            "pre_tokenizer": parts["pre_tokenizer"], "post_processor": None, "decoder": parts["decoder"],
            "model": parts["model"]}


def write_hf_tokenizer(tokenizer, folder: Path, context_length: int) -> bool:
    """Write tokenizer.json + tokenizer_config.json into folder; False when the tokenizer has no such form."""
    document = tokenizer_json(tokenizer)
    if document is None:
        return False
    eot = tokenizer.decode([tokenizer.eot_id])
    atomic_write_text(folder / "tokenizer.json", json.dumps(document, ensure_ascii=False))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": context_length,
              "bos_token": eot, "eos_token": eot, "unk_token": None, "clean_up_tokenization_spaces": False,
              "add_prefix_space": False}
    if isinstance(tokenizer, ChatTokenizer):
        config["chat_template"] = CHAT_TEMPLATE
    atomic_write_text(folder / "tokenizer_config.json", json.dumps(config, indent=2) + "\n")
    return True
