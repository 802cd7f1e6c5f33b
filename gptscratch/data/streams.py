"""Every kind of source behind one interface: documents in a fixed order, each with a stable id.

    parse_source(text)          kind      documents
    builtin, file, folder, glob files     text files, one document each (sources.py)
    *.jsonl *.json *.parquet    table     one row = one document, read by `datasets` (hub.py;
    *.csv (file/folder/glob)              .jsonl by jsonl.py, .parquet by parquet.py: same rows)
    fineweb-edu[:CONFIG]        hub       FineWeb-Edu rows, streamed from the Hugging Face Hub
    hf:ORG/NAME[:CONFIG]        hub       any Hub dataset with a text column, streamed
    task:NAME[:options]         task      generated examples (gptscratch.tasks)

prepare() consumes `documents(start, resume)` in order and records in the manifest how far it
got (the index of the next document, plus a resumable stream position for streamed sources),
so an interrupted or bounded (`--tokens`) prepare continues exactly where it stopped. For that
the order must be the same on every run: files sorted by id, rows in dataset order, tasks
from their seed. A document's id decides its split (hash rule, prepare.py), except where the
source says (a task's held-out test set is the val split).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gptscratch.errors import UsageError
from gptscratch.tokenizer import CharTokenizer, Tokenizer, get_tokenizer



@dataclass(slots=True)
class Doc:
    """One document of a source. `snapshot` = (stream state, index it resumes at) or None."""

    index: int
    doc_id: str
    text: str
    split: str | None = None
    snapshot: tuple | None = None


class Source:
    """Interface; see the module docstring for the kinds."""

    kind = ""
    canonical = ""  # recorded in the manifest as "source"
    stem = "data"  # default dataset name = <stem>-<tokenizer>
    default_tokenizer = "byte"
    single_document = False
    options: dict = {}

    def fingerprint(self) -> str:
        """Changes when the source's content changes (then a prepared dataset is rebuilt)."""
        return _digest({"source": self.canonical, **self.options})

    def total_bytes(self) -> int | None:
        return None

    def split_overrides(self) -> dict[str, str]:
        """Documents whose split is forced (so that both splits are non-empty); see prepare.py."""
        return {}

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        raise NotImplementedError

    def vocabulary_texts(self) -> Iterable[str]:
        return (doc.text for doc in self.documents())

    def make_tokenizer(self, name: str) -> Tokenizer:
        if name == "char":
            return CharTokenizer.from_texts(self.vocabulary_texts())
        return get_tokenizer(name)


class FileSource(Source):
    """builtin / text file / folder / glob (see sources.py); empty files are left out."""

    kind = "files"

    def __init__(self, source: str):
        from gptscratch.data.sources import canonical_source, list_documents, source_stem

        self.canonical = canonical_source(source)
        self.stem = source_stem(source)
        self.files = [doc for doc in list_documents(source) if doc.size > 0]
        if not self.files:
            raise UsageError(f"source {source!r} contains no text (all files are empty); add text to it")
        self.single_document = len(self.files) == 1
        self.options = {}

    def fingerprint(self) -> str:
        from gptscratch.data.sources import source_fingerprint

        return source_fingerprint(self.files)

    def total_bytes(self) -> int:
        return sum(doc.size for doc in self.files)

    def split_overrides(self) -> dict[str, str]:
        from gptscratch.data.prepare import assign_splits, hash_split

        if len(self.files) < 2:
            return {}
        routes = assign_splits([doc.doc_id for doc in self.files])
        return {doc_id: split for doc_id, split in routes.items() if split != hash_split(doc_id)}

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        for index in range(start, len(self.files)):
            file = self.files[index]
            yield Doc(index, file.doc_id, file.read())


class TaskSource(Source):
    """A synthetic task: the held-out test examples (val) first, then the training examples."""

    kind = "task"
    default_tokenizer = "char"

    def __init__(self, source: str):
        from gptscratch.tasks import parse_task

        self.task = parse_task(source)
        self.canonical = self.task.source
        self.stem = self.task.stem
        self.options = {}

    def total_bytes(self) -> int:
        average = sum(len(e.text) for e in self.task.test_set()) / len(self.task.test_set())
        return int(average * (len(self.task.test_set()) + int(self.task.options["train"])))

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        test = self.task.test_set()
        examples = [(example, "val") for example in test]
        index = 0
        for example, split in examples:
            if index >= start:
                yield Doc(index, f"test-{index}", example.text, split)
            index += 1
        for number, example in enumerate(self.task.train_examples()):
            if index >= start:
                yield Doc(index, f"train-{number}", example.text, "train")
            index += 1

    def make_tokenizer(self, name: str) -> Tokenizer:
        from gptscratch.tasks import TASK_ALPHABET

        return CharTokenizer(TASK_ALPHABET) if name == "char" else get_tokenizer(name)


def parse_source(source: str, text_field: str = "text", split: str = "train") -> Source:
    """The Source for a source string (see module docstring); bad input raises UsageError."""
    from gptscratch.data import hub
    from gptscratch.tasks import is_task_source

    text = source.strip()
    if not text:
        raise UsageError("empty source; give 'builtin', a file, folder or glob, fineweb-edu, hf:ORG/NAME or task:NAME")
    if is_task_source(text):
        return TaskSource(text)
    if hub.is_hub_source(text):
        return hub.HubSource(text, text_field=text_field, split=split)
    tables = hub.table_files(text)
    if tables:
        return hub.TableSource(text, tables, text_field=text_field)
    return FileSource(text)


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()
