"""resolve_dataset(): turn a `--data` argument into a Dataset, preparing it when needed.

`data` is first looked up as a prepared dataset: its name under data_root(), then a folder
holding a manifest.json. Otherwise it is a source (`builtin`, file, folder, glob), prepared
under its default name "<source stem>-<tokenizer>" -- and re-used as is on later calls while
the source's fingerprint (document ids, sizes, mtimes) is unchanged, so `train --data ~/notes`
tokenizes once and picks up edits automatically.

Tokenizer mismatch: naming a prepared dataset means "exactly these tokens", so when an
explicitly requested tokenizer differs from the dataset's we raise UsageError with the
`gptscratch data prepare <source> --tokenizer <name>` command instead of silently
re-tokenizing (a source given directly is simply prepared with the requested tokenizer,
under its own default name).
"""

from __future__ import annotations

import os
import shlex

from gptscratch import paths
from gptscratch.data.dataset import Dataset, find_dataset_folder, open_dataset, read_manifest
from gptscratch.data.prepare import DEFAULT_DATA_TOKENIZER, Progress, default_name, prepare
from gptscratch.data.shards import MANIFEST_NAME
from gptscratch.data.sources import BUILTIN, canonical_source, is_glob, list_documents, source_fingerprint
from gptscratch.errors import DataError, UsageError
from gptscratch.tokenizer import canonical_name


def resolve_dataset(data: str, tokenizer: str | None = None, progress: Progress | None = None) -> Dataset:
    """A prepared dataset (name or folder) or a source prepared now; see module docstring."""
    requested = canonical_name(tokenizer) if tokenizer else None
    folder = find_dataset_folder(data)
    if folder is not None:
        dataset = open_dataset(str(folder))
        if requested and requested != dataset.tokenizer_name:
            raise UsageError(
                f"dataset {dataset.name!r} was tokenized with {dataset.tokenizer_name}, not {requested}; run "
                f"`gptscratch data prepare {shlex.quote(dataset.source)} --tokenizer {requested}` and train on that dataset"
            )
        return dataset
    canonical = canonical_source(data)
    if canonical != BUILTIN and not is_glob(canonical) and not os.path.exists(canonical):
        raise UsageError(
            f"{data!r} is neither a prepared dataset nor an existing path; see `gptscratch data list`, "
            "or give a text file, a folder, a glob or 'builtin'"
        )
    tokenizer_name = requested or DEFAULT_DATA_TOKENIZER
    name = default_name(data, tokenizer_name)
    existing = paths.data_root() / name
    if (existing / MANIFEST_NAME).is_file():
        try:
            manifest = read_manifest(existing)
        except DataError:
            manifest = {}
        documents = [doc for doc in list_documents(data) if doc.size > 0]
        if (
            manifest.get("source") == canonical
            and manifest.get("tokenizer", {}).get("name") == tokenizer_name
            and manifest.get("source_fingerprint") == source_fingerprint(documents)
        ):
            return open_dataset(str(existing))
    return prepare(data, tokenizer_name, name, progress=progress)
