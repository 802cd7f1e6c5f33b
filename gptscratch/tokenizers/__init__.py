"""Tokenizers: text <-> integer ids, behind one small interface, and the registry that builds them by name.

One module per kind, all implementing `base.Tokenizer` (ids 0..vocab_size-1, one end-of-text id):

    base.py          the interface, EOT_TEXT, the invalid-id error
    byte.py          "byte": the 256 UTF-8 byte values + EOT (vocabulary 257); any text works
    char.py          "char": one id per character of a corpus; the vocabulary travels in the spec
    tiktoken_bpe.py  OpenAI's encodings run by tiktoken ("cl100k_base", "r50k_base" = "gpt2", ...), offline-aware
    hf_bpe.py        "hf-bpe": a pretrained model's own vocab.json + merges.txt, run by tiktoken
    hf_json.py       "hf-json": a pretrained model's own tokenizer.json, run by Hugging Face `tokenizers`
    files.py         the two kinds made of files: their folder, and copying it into a checkpoint
    chat.py          "chat": any of the above plus the special tokens of gptscratch's chat template
    bpe.py           byte-pair encoding by hand: training and encoding in plain Python (the readable version)
    bpe_fast.py      the same training through rustbpe, for gigabytes
    trained.py       "bpe": a tokenizer trained by `gptscratch data train-tokenizer`, by the name given to it

This file is the registry: `get_tokenizer(name)` builds one from what a user types (`--tokenizer`: a name, or a
model folder — tokenizer.json is preferred when the folder also has vocab.json + merges.txt), and
`from_spec(spec)` rebuilds one from what a dataset manifest or a checkpoint recorded. `TOKENIZER_NAMES` is the
single list of built-in names the command line offers (its help and guided mode read it); the names of
trained tokenizers (trained.py) are accepted wherever those are. Importing this package loads
neither tiktoken nor `tokenizers`: encodings and files are loaded on first use.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from gptscratch.errors import TokenizerError, UsageError

from .base import EOT_TEXT, Tokenizer
from .byte import ByteTokenizer
from .char import CharTokenizer
from .files import HF_BPE, HF_JSON, TRAINED_BPE, TRAINED_FILES
from .hf_bpe import HfBpeTokenizer, from_hf_spec, looks_like_hf_bpe
from .hf_json import HfJsonTokenizer, from_json_spec, looks_like_hf_json
from .tiktoken_bpe import TIKTOKEN_NAMES, TiktokenTokenizer
from .trained import TrainedTokenizer, from_trained_spec, trained_folder, trained_names

DEFAULT_TOKENIZER = "cl100k_base"
# What `--tokenizer` accepts by name (besides ALIASES and a model folder: tokenizer.json, or vocab.json + merges.txt).
TOKENIZER_NAMES: tuple[str, ...] = ("byte", "char", *TIKTOKEN_NAMES)
ALIASES = {"gpt2": "r50k_base"}  # same 50257-token vocabulary and ids


def describe_names() -> str:
    """The names for help texts, aliases in parentheses: "byte, char, cl100k_base, r50k_base (gpt2), ..."."""
    aliases = {target: alias for alias, target in ALIASES.items()}
    return ", ".join(f"{name} ({aliases[name]})" if name in aliases else name for name in TOKENIZER_NAMES) + \
        " or the name of a tokenizer trained with `gptscratch data train-tokenizer`"


def canonical_name(name: str) -> str:
    """Resolve aliases ("gpt2" -> "r50k_base"); a trained tokenizer's name is its own; unknown names raise
    UsageError listing the choices."""
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in TOKENIZER_NAMES and trained_folder(key) is None:
        trained = trained_names()
        mine = f"; trained here: {', '.join(trained)}" if trained else ""
        raise UsageError(f"unknown tokenizer {name!r}; choose one of: {describe_names()}{mine}")
    return key


def from_folder(folder: str | os.PathLike) -> Tokenizer:
    """A model folder's own tokenizer: tokenizer.json (hf-json) when present, else vocab.json + merges.txt
    (hf-bpe); a trained BPE's folder (bpe.json); UsageError when it holds none of them."""
    folder = os.path.expanduser(str(folder))
    if os.path.isfile(os.path.join(folder, TRAINED_FILES[1])):
        return TrainedTokenizer(folder)
    if looks_like_hf_json(folder):
        return HfJsonTokenizer(folder)
    if looks_like_hf_bpe(folder):
        return HfBpeTokenizer(folder)
    raise UsageError(f"{folder} is not a tokenizer folder (tokenizer.json, or vocab.json + merges.txt); pass one, "
                     f"or a name: {describe_names()}")


def get_tokenizer(name: str = DEFAULT_TOKENIZER, texts: Iterable[str] | None = None) -> Tokenizer:
    """Build a tokenizer by name (or from a model folder, see `from_folder`); "char" needs `texts`."""
    key = name.strip().lower()
    if key not in (*TOKENIZER_NAMES, *ALIASES) and trained_folder(key) is not None:
        return TrainedTokenizer.named(key)
    if key not in (*TOKENIZER_NAMES, *ALIASES) and os.path.isdir(os.path.expanduser(name)):
        return from_folder(name)
    if name in (HF_BPE, HF_JSON):
        raise UsageError(f"an {name} tokenizer is made of files: pass its folder (tokenizer.json, or vocab.json + "
                         "merges.txt), e.g. the tokenizer/ folder of a converted checkpoint")
    key = canonical_name(name)
    if key == "byte":
        return ByteTokenizer()
    if key == "char":
        if texts is None:
            raise UsageError("the char tokenizer is built from a corpus; prepare a dataset with --tokenizer char")
        return CharTokenizer.from_texts(texts)
    return TiktokenTokenizer.named(key)


def from_spec(spec: dict, base_dir: str | os.PathLike | None = None) -> Tokenizer:
    """Rebuild a tokenizer from `Tokenizer.spec()` and check it has the recorded vocabulary size.

    base_dir: the folder a spec's relative file paths refer to (a checkpoint folder for "hf-bpe" / "hf-json").
    """
    if not isinstance(spec, dict) or "name" not in spec:
        raise TokenizerError(f"invalid tokenizer spec {spec!r}; it must be a dict with a 'name' (re-prepare the data)")
    if spec.get("kind") == TRAINED_BPE:
        tokenizer: Tokenizer = from_trained_spec(spec, base_dir)
    elif spec["name"] == HF_BPE:
        tokenizer = from_hf_spec(spec, base_dir)
    elif spec["name"] == HF_JSON:
        tokenizer = from_json_spec(spec, base_dir)
    elif spec["name"] == "chat":
        from .chat import ChatTokenizer

        tokenizer = ChatTokenizer(from_spec(spec.get("base") or {}, base_dir), spec.get("special") or ())
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


__all__ = ["ALIASES", "DEFAULT_TOKENIZER", "EOT_TEXT", "TOKENIZER_NAMES", "ByteTokenizer", "CharTokenizer",
           "HfBpeTokenizer", "HfJsonTokenizer", "TiktokenTokenizer", "Tokenizer", "TrainedTokenizer", "canonical_name",
           "describe_names", "from_folder", "from_spec", "get_tokenizer"]
