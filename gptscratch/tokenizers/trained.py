"""Tokenizers trained by `gptscratch data train-tokenizer`: a learned BPE, stored as files, run by tiktoken.

A trained tokenizer is a folder (under paths.tokenizers_root() while it lives in the cache, and copied into
every dataset and checkpoint that uses it, so those never depend on the cache):

    bpe.tiktoken   the vocabulary in tiktoken's own format: one line per token, "<base64 of its bytes> <id>",
                   ids 0..255 the single bytes, then the merges in the order they were learned
    bpe.json       everything else: the name, the split pattern, the special tokens and their ids, how and on
                   what it was trained, and the sha256 of bpe.tiktoken

Ids: 256 bytes, then the merges, then the special tokens ("<|endoftext|>" first, then any `--special-tokens`);
the vocabulary size asked for counts all three. Encoding gives the ids of the educational encoder (bpe.py) —
the tests check it — but through tiktoken, which runs the same lowest-rank-first BPE in Rust on all cores.

The spec records the tokenizer's own name and kind "bpe": {"name": "mytok", "kind": "bpe", "path": ..., "digest":
...}. A dataset prepared with `--tokenizer mytok` is named "<source>-mytok", and the digest tells a dataset made
with an earlier tokenizer of the same name (trained again with --overwrite) from a current one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from gptscratch.errors import TokenizerError, UsageError

from .base import EOT_TEXT
from .bpe import BYTES, PATTERNS
from .files import TRAINED_BPE as KIND
from .files import TRAINED_FILES, existing_folder
from .tiktoken_bpe import TiktokenTokenizer

RANKS_FILE, META_FILE = TRAINED_FILES
FORMAT = "gptscratch-bpe"
NAME_RULE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# Names the registry already gives a meaning to (built-in tokenizers, their aliases, the other kinds).
RESERVED = ("byte", "char", "cl100k_base", "r50k_base", "p50k_base", "o200k_base", "gpt2", "chat", "bpe", "hf-bpe",
            "hf-json")


def root() -> Path:
    from gptscratch import paths

    return paths.tokenizers_root()


def check_name(name: str) -> str:
    """`name` when it can name a trained tokenizer, else a UsageError saying which names can."""
    if not NAME_RULE.match(name or ""):
        raise UsageError(f"tokenizer name {name!r} is not allowed; pass --name with lowercase letters, digits, '.', "
                         "'_' and '-' (at most 64 characters, starting with a letter or digit)")
    if name in RESERVED:
        raise UsageError(f"tokenizer name {name!r} is taken by a built-in tokenizer; choose another --name")
    return name


def check_available(name: str, overwrite: bool = False) -> Path:
    """The cache folder a tokenizer called `name` would be saved in; UsageError for a name that is not allowed,
    or taken while `overwrite` is off."""
    target = root() / check_name(name)
    if target.exists() and not overwrite:
        raise UsageError(f"a tokenizer named {name!r} exists; pass --overwrite to replace it or choose another --name")
    return target


def trained_folder(name: str) -> Path | None:
    """The cache folder of the trained tokenizer called `name`, or None."""
    if not NAME_RULE.match(name or ""):
        return None
    folder = root() / name
    return folder if (folder / META_FILE).is_file() else None


def trained_names() -> list[str]:
    """The names of the tokenizers in the cache, sorted."""
    if not root().is_dir():
        return []
    return sorted(p.name for p in root().iterdir() if NAME_RULE.match(p.name) and (p / META_FILE).is_file())


def _read_meta(folder: Path) -> dict:
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"cannot read {folder / META_FILE} ({exc}); train the tokenizer again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TokenizerError(f"{folder / META_FILE} is not a gptscratch BPE file; train the tokenizer again")
    return meta


def read_ranks(path: Path) -> dict[bytes, int]:
    """tiktoken's file format: "<base64 token> <rank>" per line."""
    ranks: dict[bytes, int] = {}
    try:
        for line in path.read_bytes().splitlines():
            if line:
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    except (OSError, ValueError) as exc:
        raise TokenizerError(f"cannot read {path} ({exc}); train the tokenizer again") from None
    return ranks


def ranks_text(tokens: Sequence[bytes]) -> bytes:
    """The bpe.tiktoken file for `tokens` (all of them, the 256 bytes first), ids in list order."""
    return b"".join(base64.b64encode(token) + b" %d\n" % rank for rank, token in enumerate(tokens))


_ENCODINGS: dict[tuple[Path, str], tuple] = {}


class TrainedTokenizer(TiktokenTokenizer):
    """A tokenizer folder written by `save` (see the module docstring)."""

    def __init__(self, folder: str | Path):
        folder = Path(folder).expanduser().resolve()
        meta = _read_meta(folder)
        key = (folder, meta.get("sha256", ""))
        if key not in _ENCODINGS:
            _ENCODINGS[key] = (meta, self._load(folder, meta))
        self.meta, encoding = _ENCODINGS[key]
        super().__init__(meta["name"], encoding)
        self.folder, self.pattern = folder, meta["pattern_regex"]
        self.eot_id = self.meta["special_tokens"][EOT_TEXT]

    @staticmethod
    def _load(folder: Path, meta: dict):
        import tiktoken

        ranks = read_ranks(folder / RANKS_FILE)
        digest = hashlib.sha256((folder / RANKS_FILE).read_bytes()).hexdigest()
        if digest != meta.get("sha256") or meta.get("digest") != identity_digest(
                digest, meta.get("pattern_regex", ""), meta.get("special_tokens") or {}):
            raise TokenizerError(f"{folder / RANKS_FILE} does not match {META_FILE} (sha256 differs); the tokenizer "
                                 "folder is damaged, train it again")
        if sorted(ranks.values()) != list(range(len(ranks))) or len(ranks) < BYTES:
            raise TokenizerError(f"{folder / RANKS_FILE} does not hold ids 0..n-1; train the tokenizer again")
        return tiktoken.Encoding(name=f"{KIND}:{meta['name']}", pat_str=meta["pattern_regex"], mergeable_ranks=ranks,
                                 special_tokens=dict(meta["special_tokens"]))

    @classmethod
    def named(cls, name: str) -> TrainedTokenizer:
        folder = trained_folder(name)
        if folder is None:
            raise UsageError(f"no trained tokenizer named {name!r}; see `gptscratch data list`, or train one with "
                             f"`gptscratch data train-tokenizer SOURCE --name {name}`")
        return cls(folder)

    def special_tokens(self) -> dict[str, int]:
        return {text: i for text, i in self.meta["special_tokens"].items() if text != EOT_TEXT}

    def spec(self) -> dict:
        return {**super().spec(), "kind": KIND, "path": str(self.folder), "digest": self.meta["digest"]}

    def summary(self) -> dict:
        """What `data list` shows of it."""
        size = sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())
        return {"name": self.name, "vocab_size": self.vocab_size, "merges": self.meta["merges"],
                "pattern": self.meta["pattern"], "special_tokens": list(self.meta["special_tokens"]),
                "trainer": self.meta.get("trainer"), "source": self.meta.get("source"),
                "trained_bytes": self.meta.get("source_bytes"), "seconds": self.meta.get("seconds"),
                "created": self.meta.get("created"), "size_bytes": size, "path": str(self.folder)}


def identity_digest(ranks_sha256: str, pattern_regex: str, specials: dict[str, int]) -> str:
    """What identifies a trained tokenizer: its vocabulary, its split pattern and its special tokens (two
    tokenizers that differ in any of them give different ids)."""
    blob = json.dumps({"ranks": ranks_sha256, "pattern": pattern_regex, "special": specials}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def save(name: str, tokens: Sequence[bytes], pattern: str, special_tokens: Sequence[str], info: dict,
         overwrite: bool = False) -> Path:
    """Write the tokenizer `name` into the cache and return its folder. `tokens`: the 256 bytes then the merged
    tokens in order; `pattern`: a key of PATTERNS or a regex. Atomic: the files are written in a temporary folder
    that is renamed into place, so an interruption leaves the cache as it was (an older tokenizer of that name
    is replaced only once the new one is complete)."""
    target = check_available(name, overwrite)
    ranks = ranks_text(tokens)
    specials = {text: len(tokens) + index for index, text in enumerate(special_tokens)}
    sha256 = hashlib.sha256(ranks).hexdigest()
    meta = {"format": FORMAT, "version": 1, "name": name, "pattern": pattern,
            "pattern_regex": PATTERNS.get(pattern, pattern), "merges": len(tokens) - BYTES,
            "special_tokens": specials, "vocab_size": len(tokens) + len(specials), "sha256": sha256,
            "digest": identity_digest(sha256, PATTERNS.get(pattern, pattern), specials), **info}
    root().mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root()))
    tmp.chmod(0o755)  # mkdtemp makes it private; the cache's other folders are not
    old = None
    try:
        (tmp / RANKS_FILE).write_bytes(ranks)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=root()))
            os.replace(target, old / name)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not target.exists():
            os.replace(old / name, target)  # put the previous tokenizer back
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target


def is_trained_folder(folder: str | Path) -> bool:
    return (Path(folder) / META_FILE).is_file()


def restore(folder: str | Path) -> str:
    """Make the trained tokenizer in `folder` (a checkpoint's or a dataset's copy) usable by its name again: copy
    it into the cache unless the very same tokenizer is there. Returns the name; a *different* tokenizer under
    that name in the cache is a UsageError (it was trained again since)."""
    tokenizer = TrainedTokenizer(folder)
    digest = tokenizer.meta["digest"]
    # Under its own name; if a different tokenizer took that name since (trained again with --overwrite), under
    # "<name>-<digest prefix>", so that neither has to go.
    for name in (tokenizer.name, f"{tokenizer.name[:55]}-{digest[:8]}"):
        existing = trained_folder(name)
        if existing is None:
            tokens = [token for token, _ in sorted(read_ranks(tokenizer.folder / RANKS_FILE).items(),
                                                   key=lambda item: item[1])]
            keep = {key: value for key, value in tokenizer.meta.items() if key not in (
                "format", "version", "name", "pattern", "pattern_regex", "merges", "special_tokens", "vocab_size",
                "sha256", "digest")}
            save(name, tokens, tokenizer.meta["pattern"], list(tokenizer.meta["special_tokens"]), keep)
            return name
        if _read_meta(existing).get("digest") == digest:
            return name
    raise UsageError(f"the cache holds other tokenizers under {tokenizer.name!r} and {name!r}; remove one with "
                     f"`gptscratch data rm --tokenizer NAME`")


def remove(name: str) -> Path:
    """Delete the trained tokenizer `name` from the cache (datasets and checkpoints keep their own copies). The
    folder is renamed away first, so an interrupted removal never leaves half a tokenizer under the name."""
    folder = trained_folder(name)
    if folder is None:
        raise UsageError(f"no trained tokenizer named {name!r}; see `gptscratch data list`")
    doomed = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=root()))
    os.replace(folder, doomed / name)
    shutil.rmtree(doomed, ignore_errors=True)
    return folder


def from_trained_spec(spec: dict, base_dir: str | Path | None = None) -> TrainedTokenizer:
    """Rebuild from a spec; a relative "path" is resolved against `base_dir` (the dataset or checkpoint folder)."""
    tokenizer = TrainedTokenizer(existing_folder(spec, base_dir))
    if spec.get("digest") and spec["digest"] != tokenizer.meta["digest"]:
        raise TokenizerError(f"the tokenizer files in {tokenizer.folder} are not the ones recorded (digest differs); "
                             "they were replaced: prepare the data or train the model again")
    return tokenizer
