"""A prepared dataset on disk: open it, read its tokens, list all of them.

`Dataset` is a thin view over a folder written by `prepare()` (layout in shards.py). Opening
reads only the manifest and checks shard sizes; tokens are memory-mapped on first use, so a
multi-GB dataset costs no RAM until windows are read from it.

Manifest (manifest.json) fields:
    format, version             "gptscratch-dataset", 1
    name, source                dataset name; "builtin", an absolute path/glob, "fineweb-edu:CONFIG",
                                "hf:ORG/NAME[:CONFIG]" or "task:NAME[:options]"
    source_kind, source_options "files" | "table" | "hub" | "task"; {"text_field", "split"} for tables
    source_fingerprint          changes when the source's content changes (files: ids, sizes, mtimes)
    tokenizer                   Tokenizer.spec() (a char vocabulary lives here)
    dtype, shard_tokens         "uint16" or "uint32" (little-endian); tokens per full shard
    split_rule, split_overrides "hash" (per document id), "position" (single document, 90/10) or
                                "task" (the held-out test set is val); documents moved by the fallback
    splits.{train,val}          {"documents", "tokens", "shards": [{"file", "tokens", "sha256"}]}
    complete, target_tokens     the whole source is in / the --tokens bound of the last prepare
    progress                    resume cursor: next_document, skip_tokens, stream_state, stream_at
    created, updated            ISO-8601 UTC times; gptscratch_version
Fields added after the first release are optional: a manifest without `complete` is complete.
"""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path

import numpy as np

from gptscratch import paths
from gptscratch.data.lock import dataset_lock, replaced_folder
from gptscratch.data.shards import (
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SPLITS,
    ConcatenatedTokens,
    open_shard,
    sha256_file,
)
from gptscratch.errors import DataError, UsageError

_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(name: str) -> str:
    """Dataset names become folder names: letters, digits, '.', '_', '-' (not starting with '.')."""
    if not _NAME_PATTERN.match(name or ""):
        raise UsageError(
            f"invalid dataset name {name!r}; use letters, digits, '.', '_' or '-' (e.g. mynotes-byte)"
        )
    return name


class Dataset:
    """A prepared dataset: name, folder, manifest, tokenizer and memory-mapped token splits."""

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        self.name: str = manifest["name"]
        self.dtype = np.dtype(manifest["dtype"]).newbyteorder("<")
        self._tokens: dict[str, object] = {}

    @cached_property
    def tokenizer(self):
        from gptscratch.tokenizers import from_spec

        return from_spec(self.manifest["tokenizer"], base_dir=self.path)

    @property
    def tokenizer_name(self) -> str:
        return self.manifest["tokenizer"]["name"]

    @property
    def source(self) -> str:
        return self.manifest["source"]

    def num_tokens(self, split: str) -> int:
        return int(self._split(split)["tokens"])

    def num_documents(self, split: str) -> int:
        return int(self._split(split)["documents"])

    def tokens(self, split: str):
        """The split's tokens as one read-only 1-D array-like (no copy).

        One shard (the usual case: 100M tokens per shard) -> a numpy memmap; several shards
        -> a ConcatenatedTokens over their memmaps (same len / slicing, slices may span shards).
        """
        if split not in self._tokens:
            parts = [open_shard(self.path / s["file"], self.dtype, int(s["tokens"])) for s in self._split(split)["shards"]]
            self._tokens[split] = parts[0] if len(parts) == 1 else ConcatenatedTokens(parts)
        return self._tokens[split]

    def size_bytes(self) -> int:
        return sum(file.stat().st_size for file in self.path.iterdir() if file.is_file())

    def verify(self) -> None:
        """Recompute every shard's sha256 (reads all data) and compare with the manifest."""
        for split in SPLITS:
            for shard in self._split(split)["shards"]:
                if sha256_file(self.path / shard["file"]) != shard["sha256"]:
                    raise DataError(
                        f"shard {self.path / shard['file']} does not match its sha256 in the manifest; "
                        "re-prepare the dataset with --overwrite"
                    )

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete", True))

    def summary(self) -> dict:
        """Plain dict for `data list` / `data prepare --json`."""
        return {
            "name": self.name,
            "source": self.source,
            "kind": self.manifest.get("source_kind", "files"),
            "tokenizer": self.tokenizer_name,
            "vocab_size": self.manifest["tokenizer"].get("vocab_size"),
            "train_tokens": self.num_tokens("train"),
            "val_tokens": self.num_tokens("val"),
            "train_documents": self.num_documents("train"),
            "val_documents": self.num_documents("val"),
            "shards": sum(len(self._split(split)["shards"]) for split in SPLITS),
            "complete": self.complete,
            "target_tokens": self.manifest.get("target_tokens"),
            "size_bytes": self.size_bytes(),
            "path": str(self.path),
        }

    def info(self) -> dict:
        """summary() plus the shard list, dtype, split rule and dates (`data info`)."""
        splits = {split: [dict(shard) for shard in self._split(split)["shards"]] for split in SPLITS}
        keys = ("dtype", "shard_tokens", "split_rule", "source_options", "created", "updated", "gptscratch_version")
        return {**self.summary(), **{key: self.manifest.get(key) for key in keys}, "shard_files": splits}

    def _split(self, split: str) -> dict:
        if split not in SPLITS:
            raise UsageError(f"unknown split {split!r}; use 'train' or 'val'")
        return self.manifest["splits"][split]

    def __repr__(self) -> str:
        return f"Dataset(name={self.name!r}, tokenizer={self.tokenizer_name!r}, path={str(self.path)!r})"


def _manifest_problem(manifest: dict) -> str | None:
    """What a manifest lacks that Dataset relies on (None when nothing): a hand-edited or foreign file
    must fail here with the file's name, not later as a KeyError deep in a command."""
    for key, kind in (("name", str), ("source", str), ("dtype", str), ("tokenizer", dict), ("splits", dict)):
        if not isinstance(manifest.get(key), kind):
            return f"its {key!r} field is missing or not a {kind.__name__}"
    if not isinstance(manifest["tokenizer"].get("name"), str):
        return "its tokenizer has no name"
    for split in SPLITS:
        entry = manifest["splits"].get(split)
        if not (isinstance(entry, dict) and isinstance(entry.get("shards"), list)
                and all(key in entry for key in ("documents", "tokens"))):
            return f"its splits.{split} lacks documents/tokens/shards"
    return None


def read_manifest(folder: Path) -> dict:
    file = Path(folder) / MANIFEST_NAME
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError(f"{folder} has no {MANIFEST_NAME}; prepare it with `gptscratch data prepare`") from None
    except (OSError, ValueError) as error:
        raise DataError(f"cannot read {file} ({error}); re-prepare the dataset with --overwrite") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_NAME:
        raise DataError(f"{file} is not a gptscratch dataset manifest; re-prepare the dataset")
    if manifest.get("version") != FORMAT_VERSION:
        raise DataError(
            f"{file} has format version {manifest.get('version')}, this gptscratch reads {FORMAT_VERSION}; "
            "re-prepare the dataset with --overwrite"
        )
    problem = _manifest_problem(manifest)
    if problem:
        raise DataError(
            f"{file} is damaged ({problem}); re-prepare it with `gptscratch data prepare SOURCE --name "
            f"{Path(folder).name} --overwrite` or delete it with `gptscratch data rm {Path(folder).name}`"
        )
    return manifest


def find_dataset_folder(name_or_path: str) -> Path | None:
    """The folder of a prepared dataset given by name or path, or None when there is none."""
    candidates = []
    if _NAME_PATTERN.match(name_or_path):
        candidates.append(paths.data_root() / name_or_path)
    candidates.append(Path(name_or_path).expanduser())
    for folder in candidates:
        if (folder / MANIFEST_NAME).is_file():
            return folder.resolve()
    return None


def open_dataset(name_or_path: str) -> Dataset:
    """Open a prepared dataset by name (under data_root()) or by folder path."""
    folder = find_dataset_folder(str(name_or_path))
    if folder is None:
        raise UsageError(
            f"no prepared dataset named {name_or_path!r}; see `gptscratch data list` or run `gptscratch data prepare`"
        )
    dataset = Dataset(folder, read_manifest(folder))
    if not dataset.complete and dataset.num_tokens("train") + dataset.num_tokens("val") == 0:
        raise DataError(
            f"dataset {dataset.name!r} has no complete shard yet (its prepare was interrupted); run "
            f"`gptscratch data prepare {dataset.source}` again to continue"
        )
    for split in SPLITS:
        dataset.tokens(split)  # checks every shard exists with the right size
    return dataset


def remove_dataset(name_or_path: str) -> Path:
    """Delete a prepared dataset folder (by name or path); returns the folder removed.

    Takes the dataset's lock without waiting: a dataset being prepared is not removed."""
    import shutil

    folder = find_dataset_folder(str(name_or_path))
    if folder is None:
        raise UsageError(f"no prepared dataset named {name_or_path!r}; see `gptscratch data list`")
    with dataset_lock(folder.name, lambda event: None, wait=False):
        shutil.rmtree(folder)
        shutil.rmtree(replaced_folder(folder), ignore_errors=True)  # an old copy a killed --overwrite set aside
    return folder


def list_datasets(broken: list | None = None) -> list[Dataset]:
    """Every readable dataset under data_root(), sorted by name.

    Unreadable folders are skipped, so one damaged dataset never hides the others; pass a list as
    `broken` to receive (folder, DataError) for each of them (`data list` reports them)."""
    root = paths.data_root()
    if not root.is_dir():
        return []
    datasets = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (folder / MANIFEST_NAME).is_file():
            continue
        try:
            datasets.append(Dataset(folder, read_manifest(folder)))
        except DataError as error:
            if broken is not None:
                broken.append((folder, error))
    return datasets
