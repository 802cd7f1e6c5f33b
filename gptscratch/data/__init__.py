"""Data pipeline: text sources -> tokenized shards on disk -> training batches.

    sources.py   what a source is (builtin corpus, file, folder, glob) and its documents
    shards.py    binary token shards (uint16/uint32) and reading them as memmaps
    dataset.py   Dataset (a prepared folder + manifest), open_dataset, list_datasets
    prepare.py   prepare(): tokenize a source into train/val shards (split rule, naming)
    resolve.py   resolve_dataset(): a dataset name, folder or source -> Dataset
    sampler.py   WindowSampler (random training windows) and eval_batches (fixed windows)

Importing this package imports numpy (not torch: the sampler imports torch on first use).
"""

from gptscratch.data.dataset import Dataset, list_datasets, open_dataset
from gptscratch.data.prepare import DEFAULT_DATA_TOKENIZER, default_name, prepare
from gptscratch.data.resolve import resolve_dataset
from gptscratch.data.shards import DEFAULT_SHARD_TOKENS
from gptscratch.data.sources import BUILTIN, TEXT_EXTENSIONS

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
    "resolve_dataset",
]


def __getattr__(name: str):
    # The sampler needs torch (~2 s to import); load it only when someone asks for it.
    if name in ("WindowSampler", "eval_batches"):
        from gptscratch.data import sampler

        return getattr(sampler, name)
    raise AttributeError(f"module 'gptscratch.data' has no attribute {name!r}")
