"""prepare(): any source -> tokenized train/val shards + manifest, resumable and extendable.

Pipeline (build.py has the commit protocol, encode.py the parallel tokenizer):
 1. parse the source (sources/): files, tables, a Hub dataset or a task;
 2. take the dataset's lock (lock.py: two prepares of one name never write at once: the second
    waits and then finds the work done);
 3. decide: already complete / reached `tokens` -> return it; prepared before from the same
    source, tokenizer and content -> continue from its cursor; content changed, `overwrite`,
    or new -> start afresh (the tokenizer is built now and fixed in the manifest; a resumed
    prepare rebuilds it from the manifest, so ids never change);
 4. stream documents in order, EOT before each, route each to its split, commit shard by
    shard until the source ends or `tokens` (train + val) are written.
An interrupted prepare (Ctrl-C, kill, network drop) keeps every committed shard; running it
again continues. A first prepare that fails before any commit leaves nothing behind.
Replacing a dataset (--overwrite, or its source changed) never deletes it up front: the old
folder waits as `.<name>.replaced` until the new one is complete, and comes back if the new
build fails (e.g. the new source is binary) or is interrupted (after a kill: on the next prepare).

Splits: each document goes to train or val by the rule in splits.py ("hash" per document id,
"position" for a single document, "task" for a task's held-out test set), recorded in the manifest.

Names: the default is "<source stem>-<tokenizer>", e.g. "builtin-byte", "mynotes-cl100k_base",
"fineweb-edu-cl100k_base", "task-counting-char". A different source or tokenizer under an
existing name needs overwrite=True.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from gptscratch import __version__, paths
from gptscratch.atomic import atomic_write_json
from gptscratch.data.dataset import Dataset, check_name, open_dataset, read_manifest
from gptscratch.data.lock import dataset_lock, replaced_folder, restore_replaced, set_aside
from gptscratch.data.shards import (
    DEFAULT_SHARD_TOKENS,
    FORMAT_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    SPLITS,
    token_dtype,
)
from gptscratch.data.sources import parse_source
from gptscratch.data.splits import VAL_FRACTION, document_split, empty_split_fallback, split_rule
from gptscratch.errors import DataError, UsageError
from gptscratch.tokenizers import Tokenizer, canonical_name, from_spec
from gptscratch.tokenizers.files import bundle_files

DEFAULT_DATA_TOKENIZER = "byte"  # local text: tiny vocabulary, by far the fastest to train on a CPU
Progress = Callable[[dict], None]


def default_name(source: str, tokenizer: str | None = None) -> str:
    parsed = parse_source(source)
    return f"{parsed.stem}-{canonical_name(tokenizer or parsed.default_tokenizer)}"


def prepare(
    source: str,
    tokenizer: str | None = None,
    name: str | None = None,
    progress: Progress | None = None,
    overwrite: bool = False,
    shard_tokens: int = DEFAULT_SHARD_TOKENS,
    tokens: int | None = None,
    text_field: str = "text",
    split: str = "train",
) -> Dataset:
    """Tokenize `source` into data_root()/<name>/ (continuing an earlier prepare) and open it.

    tokenizer: default per source (byte for local text, cl100k_base for the Hub, the task
    vocabulary for tasks). tokens: stop once train + val hold this many (None: the whole
    source). text_field / split: which column and split of a table or Hub dataset."""
    emit = progress or (lambda event: None)
    if shard_tokens < 1:
        raise UsageError(f"shard size must be at least 1 token, got {shard_tokens}; pass a positive --shard-tokens")
    if tokens is not None and tokens < 1:
        raise UsageError(f"--tokens must be at least 1, got {tokens}")
    src = parse_source(source, text_field=text_field, split=split)
    tokenizer_name = canonical_name(tokenizer or src.default_tokenizer)
    name = check_name(name or f"{src.stem}-{tokenizer_name}")
    target = paths.data_root() / name
    with dataset_lock(name, emit):
        _recover_replaced(target)
        manifest = _reusable_manifest(target, src, tokenizer_name, overwrite, emit)
        if manifest is not None and _finished(manifest, tokens):
            return open_dataset(str(target))
        if manifest is not None and manifest.get("split_rule") == "position":
            set_aside(target)  # one document: an interrupted or shorter prepare starts over
            manifest = None
        try:
            _prepare_into(target, manifest, name, src, tokenizer_name, shard_tokens, tokens, emit)
        except BaseException:
            restore_replaced(target)  # the new build failed or was interrupted: the old dataset comes back
            raise
        shutil.rmtree(replaced_folder(target), ignore_errors=True)  # the new dataset is complete: drop the old one
    return open_dataset(str(target))


def _prepare_into(target: Path, manifest: dict | None, name: str, src, tokenizer_name: str, shard_tokens: int,
                  tokens: int | None, emit: Progress) -> None:
    """Build (or continue) the dataset in `target`, rebuilding once when a streamed split came out empty."""
    for attempt in range(2):
        fresh = manifest is None
        if fresh:
            manifest = _new_manifest(target, name, src, tokenizer_name, shard_tokens, emit)
        elif attempt == 0:
            emit({"message": f"continuing {name}: {_tokens(manifest):,} tokens already prepared"})
        manifest["target_tokens"] = tokens
        _build(target, manifest, src, tokens, emit, fresh)
        fallback = empty_split_fallback(manifest, src)
        if fallback is None or attempt == 1:
            break
        emit({"message": f"{name}: a split came out empty; rebuilding with {fallback}"})
        shutil.rmtree(target)
        manifest = None
        src.forced = fallback  # picked up by split_rule() in _new_manifest


def _tokens(manifest: dict) -> int:
    return sum(int(manifest["splits"][split]["tokens"]) for split in SPLITS)


def _finished(manifest: dict, tokens: int | None) -> bool:
    """Complete, or holding the `tokens` asked for (a --tokens build stays "incomplete" so it can be extended)."""
    return bool(manifest.get("complete", True) or (tokens and _tokens(manifest) >= tokens))


def _recover_replaced(target: Path) -> None:
    """After a replacement that was killed (no chance to restore): keep the new dataset if it is complete,
    else bring the old one back."""
    if not replaced_folder(target).is_dir():
        return
    try:
        manifest = read_manifest(target)
    except DataError:
        done = False
    else:
        done = _finished(manifest, manifest.get("target_tokens"))
    if done:
        shutil.rmtree(replaced_folder(target), ignore_errors=True)
    else:
        restore_replaced(target)


def _reusable_manifest(target: Path, src, tokenizer_name: str, overwrite: bool, emit: Progress) -> dict | None:
    """The existing manifest to continue from, or None to start afresh (the old folder set aside)."""
    if not target.exists():
        return None
    if overwrite:
        set_aside(target)
        return None
    try:
        manifest = read_manifest(target)
    except DataError:
        raise UsageError(
            f"{target} exists but is not a readable dataset; pass --overwrite to replace it or choose another --name"
        ) from None
    if manifest.get("source") != src.canonical or manifest.get("tokenizer", {}).get("name") != tokenizer_name:
        raise UsageError(
            f"dataset {target.name!r} already exists (source {manifest.get('source')}, tokenizer "
            f"{manifest.get('tokenizer', {}).get('name')}); pass --overwrite to replace it or choose another --name"
        )
    if manifest.get("source_fingerprint") != src.fingerprint():
        emit({"message": f"{target.name}: the source changed since it was prepared; preparing it again"})
        set_aside(target)
        return None
    if not tokenizer_unchanged(manifest, tokenizer_name):
        # Runs trained on these tokens may still need them (`train --resume`): replace them only when asked to.
        raise StaleTokenizerError(
            f"dataset {target.name!r} holds tokens of an earlier tokenizer {tokenizer_name!r} (trained again since); "
            f"re-tokenize it with `gptscratch data prepare {shlex.quote(src.canonical)} --tokenizer {tokenizer_name} "
            "--overwrite`, or prepare it under another --name", target)
    return manifest


class StaleTokenizerError(UsageError):
    """A prepared dataset was made by an earlier tokenizer of the same name; `folder` is that dataset."""

    def __init__(self, message: str, folder: Path):
        super().__init__(message)
        self.folder = folder


def tokenizer_unchanged(manifest: dict, tokenizer_name: str) -> bool:
    """Was the dataset made with the tokenizer `tokenizer_name` is now? Names are fixed for built-in tokenizers;
    a trained one can be trained again under its name (--overwrite), which changes its digest."""
    from gptscratch.tokenizers import trained_folder

    spec = manifest.get("tokenizer") or {}
    if spec.get("name") != tokenizer_name:
        return False
    if spec.get("kind") != "bpe" or trained_folder(tokenizer_name) is None:
        return True
    from gptscratch.tokenizers import TrainedTokenizer

    return spec.get("digest") == TrainedTokenizer.named(tokenizer_name).meta["digest"]


def _new_manifest(target: Path, name: str, src, tokenizer_name: str, shard_tokens: int, emit: Progress) -> dict:
    emit({"message": f"preparing {name} from {src.canonical}"})
    if tokenizer_name == "char" and src.kind != "task":
        emit({"message": "building the char vocabulary (first pass over the text)"})
    tok = src.make_tokenizer(tokenizer_name)
    rule, overrides = split_rule(src)
    spec = bundle_files(tok.spec(), target)  # a tokenizer made of files travels inside the dataset
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": name,
        "source": src.canonical,
        "source_kind": src.kind,
        "source_options": src.options,
        "source_fingerprint": src.fingerprint(),
        "tokenizer": spec,
        "dtype": token_dtype(tok.vocab_size).name,
        "shard_tokens": shard_tokens,
        "split_rule": rule,
        "split_overrides": overrides,
        "splits": {split: {"documents": 0, "tokens": 0, "shards": []} for split in SPLITS},
        "complete": False,
        "progress": {"next_document": 0, "skip_tokens": 0, "stream_state": None, "stream_at": 0},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "gptscratch_version": __version__,
    }


def _build(target: Path, manifest: dict, src, tokens: int | None, emit: Progress, fresh: bool) -> None:
    from gptscratch.data.build import ShardBuilder, build_by_position, run_documents
    from gptscratch.data.encode import BatchEncoder

    root_existed = paths.data_root().exists()
    target.mkdir(parents=True, exist_ok=True)
    atomic_write_json(target / MANIFEST_NAME, manifest)
    tok: Tokenizer = from_spec(manifest["tokenizer"], base_dir=target)
    builder = ShardBuilder(target, manifest)
    overrides = manifest.get("split_overrides") or {}
    try:
        with BatchEncoder(tok) as encoder:
            if manifest["split_rule"] == "position":
                build_by_position(builder, src, encoder, tokens, emit, VAL_FRACTION)
            else:
                def route(doc) -> str:
                    return document_split(doc, overrides)

                run_documents(builder, src, encoder, route, tokens, emit, src.total_bytes())
        if fresh and builder.documents() == 0:
            raise UsageError(f"source {src.canonical!r} contains no text; add text to it")
    except BaseException:
        builder.abort()
        if fresh and builder.committed_tokens() == 0:  # nothing worth keeping: leave no trace
            shutil.rmtree(target, ignore_errors=True)
            if not root_existed:
                _remove_empty_dir(paths.data_root())
        raise


def _remove_empty_dir(folder: Path) -> None:
    try:
        folder.rmdir()  # only succeeds when empty: we created it for this failed run
    except OSError:
        pass
