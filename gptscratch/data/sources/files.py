"""Text files as documents: the builtin corpus, a text file, a folder, a glob.

A files source is one of:

- `builtin`: the corpus that is always present, needing no download: Python's own
  `pydoc_data.topics` -- the text of the language reference that `help("if")` shows
  (about 80 topics, ~465k characters, 103 distinct characters). Each topic is one document,
  its id is the topic name.
- a text file: one document, id = the file name.
- a folder: every file below it (recursively) whose extension is in TEXT_EXTENSIONS; one
  document per file, id = the path relative to the folder (POSIX separators). Hidden files
  and folders (".git", ".venv", ...) are skipped.
- a glob such as `notes/**/*.md`: every matching file (any extension: the pattern is the
  user's explicit choice), id = the path relative to the glob's fixed prefix folder.

(A file, folder or glob of .jsonl/.json/.parquet/.csv tables is a table source instead: tables.py,
which reuses this module's listing helpers.)

Documents are listed first (cheap: names and sizes) and read lazily, one at a time, so
preparing a large folder keeps memory bounded. Reading rejects binary or non-UTF-8 files
(a NUL byte or a decode failure) with a UsageError naming the file. Ids are stable across
runs and machines, which is what the hash-based train/val split relies on. Empty files are
left out; a source whose files are all empty is a UsageError.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gptscratch.data.sources.base import Doc, Source, clean_stem
from gptscratch.data.splits import assign_splits, hash_split
from gptscratch.errors import UsageError

BUILTIN = "builtin"
TEXT_EXTENSIONS = (".txt", ".text", ".md", ".markdown", ".rst", ".py")
_GLOB_CHARS = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class ListedDocument:
    """One document of a listing (not yet read): a stable id, its size in bytes (for progress) and how to read it."""

    doc_id: str
    size: int
    path: Path | None = None  # None for builtin topics
    builtin_key: str | None = None
    mtime_ns: int = 0  # from the listing's stat (source_fingerprint needs no second stat)

    def read(self) -> str:
        if self.path is None:
            from pydoc_data.topics import topics

            return topics[self.builtin_key]
        return read_text_file(self.path)


def read_text_file(path: Path) -> str:
    """Read a UTF-8 text file; binary or non-UTF-8 content is a UsageError naming the file."""
    data = path.read_bytes()
    if b"\x00" in data:
        raise UsageError(f"{path} looks binary (contains NUL bytes); remove it from the source or pick text files only")
    try:
        return data.decode("utf-8-sig")  # a leading BOM is not text
    except UnicodeDecodeError as error:
        raise UsageError(
            f"{path} is not valid UTF-8 (byte {error.start}); convert it to UTF-8 or remove it from the source"
        ) from None


def is_glob(source: str) -> bool:
    return bool(_GLOB_CHARS.search(source))


def canonical_source(source: str) -> str:
    """The form recorded in the manifest: "builtin", or an absolute path / absolute glob."""
    if source.strip().lower() == BUILTIN:
        return BUILTIN
    return os.path.abspath(os.path.expanduser(source))


def source_stem(source: str) -> str:
    """A short human name for a source, used for default dataset names ("notes", "builtin")."""
    canonical = canonical_source(source)
    if canonical == BUILTIN:
        return BUILTIN
    if is_glob(canonical):
        canonical = _glob_root(canonical)
    path = Path(canonical)
    stem = path.stem if path.is_file() else path.name
    return clean_stem(stem)


def list_documents(source: str) -> list[ListedDocument]:
    """All documents of a source, sorted by id. Missing paths / no matches raise UsageError."""
    canonical = canonical_source(source)
    if canonical == BUILTIN:
        from pydoc_data.topics import topics

        return [ListedDocument(key, len(topics[key].encode("utf-8")), builtin_key=key) for key in sorted(topics)]
    if is_glob(canonical):
        root = Path(_glob_root(canonical))
        files = [Path(p) for p in glob.glob(canonical, recursive=True) if os.path.isfile(p)]
        if not files:
            raise UsageError(f"no files match {source!r}; check the pattern (quote it so the shell does not expand it)")
        return _documents(files, root)
    path = Path(canonical)
    if not path.exists():
        raise UsageError(f"source {source!r} does not exist; give a text file, a folder, a glob or 'builtin'")
    if path.is_file():
        return _documents([path], path.parent)
    documents = sorted(_text_documents_under(path), key=lambda document: document.doc_id)
    if not documents:
        raise UsageError(
            f"folder {source!r} has no text files ({', '.join(TEXT_EXTENSIONS)}); add some or give a glob"
        )
    return documents


def source_fingerprint(documents: list[ListedDocument]) -> str:
    """Hash of (id, size, mtime) per document: cheap way to notice a source changed."""
    digest = hashlib.sha256()
    for document in documents:
        mtime = document.mtime_ns or (document.path.stat().st_mtime_ns if document.path is not None else 0)
        digest.update(f"{document.doc_id}\0{document.size}\0{mtime}\n".encode())
    return digest.hexdigest()


class FileSource(Source):
    """builtin / text file / folder / glob (see module docstring); empty files are left out."""

    kind = "files"

    def __init__(self, source: str):
        self.canonical = canonical_source(source)
        self.stem = source_stem(source)
        self.files = [doc for doc in list_documents(source) if doc.size > 0]
        if not self.files:
            raise UsageError(f"source {source!r} contains no text (all files are empty); add text to it")
        self.single_document = len(self.files) == 1
        self.options = {}

    def fingerprint(self) -> str:
        return source_fingerprint(self.files)

    def total_bytes(self) -> int:
        return sum(doc.size for doc in self.files)

    def split_overrides(self) -> dict[str, str]:
        if len(self.files) < 2:
            return {}
        routes = assign_splits([doc.doc_id for doc in self.files])
        return {doc_id: split for doc_id, split in routes.items() if split != hash_split(doc_id)}

    def documents(self, start: int = 0, resume: dict | None = None) -> Iterator[Doc]:
        for index in range(start, len(self.files)):
            file = self.files[index]
            yield Doc(index, file.doc_id, file.read())


def walk_files(folder: Path, prefix: str = ""):
    """(relative POSIX path, os.DirEntry) of every non-hidden file below `folder`, hidden
    folders pruned. os.scandir: one stat per file (cached by the entry), no Path objects --
    listing 100k files takes a fraction of a second."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):  # like os.walk: links to folders are not followed
                yield from walk_files(Path(entry.path), f"{prefix}{entry.name}/")
            elif entry.is_file():
                yield prefix + entry.name, entry


def _text_documents_under(folder: Path) -> list[ListedDocument]:
    documents = []
    for relative, entry in walk_files(folder):
        if entry.name.lower().endswith(TEXT_EXTENSIONS):
            stat = entry.stat()
            documents.append(ListedDocument(relative, stat.st_size, path=Path(entry.path), mtime_ns=stat.st_mtime_ns))
    return documents


def _documents(files: list[Path], root: Path) -> list[ListedDocument]:
    documents = []
    for file in files:
        stat = file.stat()
        doc_id = file.relative_to(root).as_posix()
        documents.append(ListedDocument(doc_id, stat.st_size, path=file, mtime_ns=stat.st_mtime_ns))
    return sorted(documents, key=lambda document: document.doc_id)


def _glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard: ids are relative to it."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if is_glob(part):
            break
        fixed.append(part)
    return str(Path(*fixed)) if fixed else "."
