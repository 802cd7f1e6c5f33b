"""resolve_dataset(): turn a `--data` argument into a Dataset, preparing it when needed.

`data` is first looked up as a prepared dataset: its name under data_root(), then a folder
holding a manifest.json. Otherwise it is a source (`builtin`, file, folder, glob, table,
`fineweb-edu`, `hf:ORG/NAME`, `task:NAME`), prepared under its default name
"<source stem>-<tokenizer>" and re-used as is on later calls:
- local files and tables: while their fingerprint (ids, sizes, mtimes) is unchanged, so
  `train --data ~/notes` tokenizes once and picks up edits automatically;
- Hub datasets: once prepared (e.g. by `data download --tokens N`) they are used as they
  are; only a prepare that was interrupted before its --tokens target is continued;
- tasks: always the same examples for the same options.

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
from gptscratch.data.prepare import Progress, prepare, tokenizer_unchanged
from gptscratch.data.shards import MANIFEST_NAME, SPLITS
from gptscratch.data.sources import parse_source
from gptscratch.data.sources.files import BUILTIN, canonical_source, is_glob
from gptscratch.data.sources.hub import is_hub_source
from gptscratch.errors import DataError, UsageError
from gptscratch.tokenizers import canonical_name


def resolve_dataset(data: str, tokenizer: str | None = None, progress: Progress | None = None) -> Dataset:
    """A prepared dataset (name or folder) or a source prepared now; see module docstring."""
    from gptscratch.tasks import is_task_source

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
    named_source = is_hub_source(data) or is_task_source(data)
    canonical = canonical_source(data)
    if not named_source and canonical != BUILTIN and not is_glob(canonical) and not os.path.exists(canonical):
        raise UsageError(
            f"{data!r} is neither a prepared dataset nor an existing path; see `gptscratch data list`, "
            "or give a text file, a folder, a glob, 'builtin', fineweb-edu, hf:ORG/NAME or task:NAME"
        )
    source = parse_source(data)
    tokenizer_name = requested or canonical_name(source.default_tokenizer)
    existing = paths.data_root() / f"{source.stem}-{tokenizer_name}"
    if (existing / MANIFEST_NAME).is_file():
        try:
            manifest = read_manifest(existing)
        except DataError:
            manifest = {}
        same = (manifest.get("source") == source.canonical and tokenizer_unchanged(manifest, tokenizer_name)
                and manifest.get("source_fingerprint") == source.fingerprint())
        if same and _ready(manifest):
            return open_dataset(str(existing))
        if same and source.kind == "hub":  # continue an interrupted download up to its own target
            return prepare(data, tokenizer_name, existing.name, progress=progress,
                           tokens=manifest.get("target_tokens"))
    return prepare(data, tokenizer_name, existing.name, progress=progress)


def _ready(manifest: dict) -> bool:
    if manifest.get("complete", True):
        return True
    target = manifest.get("target_tokens")
    return bool(target) and sum(int(manifest["splits"][s]["tokens"]) for s in SPLITS) >= int(target)
