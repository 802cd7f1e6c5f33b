"""Data pipeline: text sources -> tokenized shards on disk -> training batches.

    sources/     every kind of source behind one interface (parse_source): documents with stable ids;
                 one module per kind -- files (builtin, file, folder, glob), tables (.jsonl/.json/.parquet/
                 .csv, with the fast jsonl and parquet readers), hub (Hugging Face datasets), tasks
    splits.py    which split each document goes to: the hash, position and task rules
    encode.py    parallel tokenization into numpy arrays
    shards.py    binary token shards (uint16/uint32) and reading them as memmaps
    build.py     writing shards with commits (resume after interruption, extend later)
    lock.py      one writer per dataset folder; a replaced dataset waits aside until its successor is complete
    dataset.py   Dataset (a prepared folder + manifest), open_dataset, list_datasets, remove_dataset
    prepare.py   prepare(): resume or rebuild, naming, the manifest of a new dataset
    resolve.py   resolve_dataset(): a dataset name, folder or source -> Dataset
    sampler.py   WindowSampler (random training windows) and eval_batches (fixed windows)

Importing this package imports numpy (not torch: the sampler imports torch on first use;
not `datasets`: tables and Hub sources import it when they are read).
"""

from gptscratch.data.dataset import Dataset, list_datasets, open_dataset, remove_dataset
from gptscratch.data.prepare import DEFAULT_DATA_TOKENIZER, default_name, prepare
from gptscratch.data.resolve import resolve_dataset
from gptscratch.data.shards import DEFAULT_SHARD_TOKENS
from gptscratch.data.sources.files import BUILTIN, TEXT_EXTENSIONS

__all__ = [
    "BUILTIN",
    "DEFAULT_DATA_TOKENIZER",
    "DEFAULT_SHARD_TOKENS",
    "TEXT_EXTENSIONS",
    "Dataset",
    "WindowSampler",
    "default_name",
    "eval_batches",
    "list_datasets",
    "open_dataset",
    "prepare",
    "remove_dataset",
    "resolve_dataset",
]


def __getattr__(name: str):
    # The sampler needs torch (~2 s to import); load it only when someone asks for it.
    if name in ("WindowSampler", "eval_batches"):
        from gptscratch.data import sampler

        return getattr(sampler, name)
    raise AttributeError(f"module 'gptscratch.data' has no attribute {name!r}")
