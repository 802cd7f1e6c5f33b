"""The interface every kind of source implements: documents in a fixed order, each with a stable id.

prepare() consumes `documents(start, resume)` in order and records in the manifest how far it
got (the index of the next document, plus a resumable stream position for streamed sources),
so an interrupted or bounded (`--tokens`) prepare continues exactly where it stopped. For that
the order must be the same on every run: files sorted by id, rows in dataset order, tasks
from their seed. A document's id decides its split (hash rule, splits.py), except where the
source says (a task's held-out test set is the val split).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gptscratch.tokenizers import CharTokenizer, Tokenizer, get_tokenizer


@dataclass(slots=True)
class Doc:
    """One document of a source. `snapshot` = (stream state, index it resumes at) or None."""

    index: int
    doc_id: str
    text: str
    split: str | None = None
    snapshot: tuple | None = None


class Source:
    """Interface; the kinds are listed in the package docstring (gptscratch/data/sources/__init__.py)."""

    kind = ""
    canonical = ""  # recorded in the manifest as "source"
    stem = "data"  # default dataset name = <stem>-<tokenizer>
    default_tokenizer = "byte"
    single_document = False
    options: dict = {}

    def fingerprint(self) -> str:
        """Changes when the source's content changes (then a prepared dataset is rebuilt)."""
        return digest({"source": self.canonical, **self.options})

    def total_bytes(self) -> int | None:
        return None

    def split_overrides(self) -> dict[str, str]:
        """Documents whose split is forced (so that both splits are non-empty); see splits.py."""
        return {}

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        raise NotImplementedError

    def vocabulary_texts(self) -> Iterable[str]:
        return (doc.text for doc in self.documents())

    def make_tokenizer(self, name: str) -> Tokenizer:
        if name == "char":
            return CharTokenizer.from_texts(self.vocabulary_texts())
        return get_tokenizer(name)


def digest(obj) -> str:
    """sha256 of a JSON-able value (keys sorted): the fingerprint of a source's identity and options."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def clean_stem(text: str) -> str:
    """`text` made safe for a dataset name: runs of other characters become '_', "data" when nothing is left."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-") or "data"
