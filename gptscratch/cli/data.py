"""`gptscratch data ...`: prepare tokenized datasets, list, inspect and remove them.

    gptscratch data prepare builtin                      # Python's reference docs, byte tokens
    gptscratch data prepare ~/notes --tokenizer cl100k_base --name notes
    gptscratch data prepare corpus.jsonl --text-field body
    gptscratch data prepare hf:roneneldan/TinyStories --tokens 50M
    gptscratch data download --tokens 1B                 # FineWeb-Edu sample-10BT, for offline training
    gptscratch data prepare task:digit-ops
    gptscratch data train-tokenizer builtin --vocab-size 2048 --name docs2k   # then --tokenizer docs2k
    gptscratch data tokenizer-report builtin -t byte -t docs2k -t cl100k_base
    gptscratch data list --json ; data info NAME ; data rm NAME ; data path

Thin layer: parse options, call gptscratch.data, render the result (tables or one line of
JSON on stdout, progress on stderr). gptscratch.data (numpy, tiktoken, datasets) is imported
inside the commands so that `gptscratch --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from gptscratch.cli.data_tokenizers import tokenizer_report_command, train_tokenizer_command, trained_tokenizers
from gptscratch.cli.render import format_number, log, print_json, progress_callback, show, table, warn
from gptscratch.tokenizers import describe_names

TOKENIZER_HELP = (f"Tokenizer: {describe_names()} (default: byte for local text, cl100k_base for fineweb-edu and "
                  "hf:, the task vocabulary for task:).")
SOURCE_HELP = ("'builtin' (Python's reference docs, no download), a text file, folder or quoted glob, .jsonl/.json/"
               ".parquet/.csv files, fineweb-edu[:CONFIG], hf:ORG/NAME[:CONFIG], or task:counting / task:digit-ops.")

app = typer.Typer(
    help="Prepare text as tokenized train/val shards, train tokenizers; list, inspect and remove them.",
    no_args_is_help=True,
)


def parse_count(text: Optional[str], flag: str = "--tokens") -> Optional[int]:  # noqa: UP007
    """'50M' -> 50_000_000; also k, B (billions), plain integers and 1e6 — read by gptscratch.training's
    parse_count (the one reading of counts, recipe files included); the error names `flag`."""
    from gptscratch.errors import UsageError
    from gptscratch.training.config import parse_count as read_count

    try:
        return read_count(text)
    except UsageError:
        raise UsageError(f"{flag} {text!r} is not a count; write e.g. 50M, 1B, 200k or 1000000") from None


def _human_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _rows(summaries: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [s["name"] + ("" if s.get("complete", True) else " (partial)"), s["source"], s["tokenizer"],
         format_number(s["train_tokens"]), format_number(s["val_tokens"]), _human_bytes(s["size_bytes"]), s["path"]]
        for s in summaries
    ]


_COLUMNS = ["name", "source", "tokenizer", "train tokens", "val tokens", "size", "path"]

TokensOption = Annotated[
    Optional[str],  # noqa: UP007 - typer inspects the annotation at runtime
    typer.Option("--tokens", help="Stop once train + val hold this many tokens (e.g. 50M, 1B); run again with "
                                  "more to extend. Default: the whole source."),
]
TokenizerOption = Annotated[Optional[str], typer.Option("--tokenizer", "-t", help=TOKENIZER_HELP)]  # noqa: UP007
NameOption = Annotated[
    Optional[str], typer.Option("--name", "-n", help="Dataset name (default: <source>-<tokenizer>).")  # noqa: UP007
]
ShardOption = Annotated[int, typer.Option("--shard-tokens", help="Tokens per shard file (100M = 200-400 MB).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one line of JSON.")]


def _prepare_and_report(source: str, tokenizer, name, overwrite, shard_tokens, tokens, text_field, split,
                        json_output: bool) -> None:
    from gptscratch.data import prepare

    with progress_callback("preparing") as progress:
        dataset = prepare(source, tokenizer, name, progress=progress, overwrite=overwrite, shard_tokens=shard_tokens,
                          tokens=parse_count(tokens), text_field=text_field, split=split)
    summary = dataset.summary()
    if json_output:
        print_json(summary)
    else:
        state = "" if summary["complete"] else " (more can be prepared: run again with a larger --tokens)"
        log(f"prepared {summary['name']}: {summary['train_tokens']:,} train / {summary['val_tokens']:,} val "
            f"tokens{state}")
        show(table(None, _COLUMNS, _rows([summary])))


@app.command("prepare")
def prepare_command(
    source: Annotated[str, typer.Argument(help=SOURCE_HELP)],
    tokenizer: TokenizerOption = None,
    name: NameOption = None,
    tokens: TokensOption = None,
    text_field: Annotated[str, typer.Option("--text-field", help="Column holding the text (tables, Hub).")] = "text",
    split: Annotated[str, typer.Option("--split", help="Split of a Hub dataset to read.")] = "train",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing dataset of that name (instead of continuing it).")
    ] = False,
    shard_tokens: ShardOption = 100_000_000,
    json_output: JsonOption = False,
) -> None:
    """Tokenize SOURCE into train/val shards under the data folder (documents split ~90/10 by id).

    Interrupted? Run the same command again: it continues from the last complete shard."""
    _prepare_and_report(source, tokenizer, name, overwrite, shard_tokens, tokens, text_field, split, json_output)


@app.command("download")
def download_command(
    tokens: Annotated[str, typer.Option("--tokens", help="How many tokens to prepare (e.g. 100M, 1B).")] = "100M",
    config: Annotated[str, typer.Option("--config", help="FineWeb-Edu config: sample-10BT, sample-100BT, ...")]
    = "sample-10BT",
    tokenizer: Annotated[str, typer.Option("--tokenizer", "-t", help=TOKENIZER_HELP)] = "cl100k_base",
    name: NameOption = None,
    shard_tokens: ShardOption = 100_000_000,
    json_output: JsonOption = False,
) -> None:
    """Stream FineWeb-Edu into shards now, to train on it later without a connection.

    The same as `data prepare fineweb-edu:CONFIG --tokens N`; run it again with a larger --tokens to extend."""
    _prepare_and_report(f"fineweb-edu:{config}" if config != "sample-10BT" else "fineweb-edu", tokenizer, name,
                        False, shard_tokens, tokens, "text", "train", json_output)


app.command("train-tokenizer")(train_tokenizer_command)
app.command("tokenizer-report")(tokenizer_report_command)


@app.command("list")
def list_command(json_output: JsonOption = False) -> None:
    """List prepared datasets (name, source, tokenizer, token counts, size, path), then trained tokenizers.

    With --json: one list, each entry with "type": "dataset" or "tokenizer"."""
    from gptscratch import paths
    from gptscratch.data import list_datasets

    broken: list = []
    summaries = [dataset.summary() for dataset in list_datasets(broken=broken)]
    for folder, error in broken:  # one damaged dataset must not hide the others: say so on stderr, list the rest
        warn(f"dataset {folder.name} is broken: {error}")
    tokenizers = [tokenizer.summary() for tokenizer in trained_tokenizers()]
    if json_output:
        print_json([{"type": "dataset", **s} for s in summaries] + [{"type": "tokenizer", **t} for t in tokenizers])
        return
    if not summaries:
        log(f"no datasets in {paths.data_root()}; create one with `gptscratch data prepare builtin`")
    else:
        show(table(None, _COLUMNS, _rows(summaries)))
    if tokenizers:
        show(table("trained tokenizers", ["name", "vocab", "pattern", "trainer", "trained on", "size", "path"],
                   [[t["name"], format_number(t["vocab_size"]), t["pattern"], t["trainer"],
                     f"{t['source']} ({_human_bytes(t['trained_bytes'] or 0)})", _human_bytes(t["size_bytes"]),
                     t["path"]] for t in tokenizers]))


@app.command("info")
def info_command(
    name: Annotated[str, typer.Argument(help="A prepared dataset's name or folder.")],
    verify: Annotated[bool, typer.Option("--verify", help="Re-hash every shard against the manifest.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Show one dataset: source, tokenizer, splits, shards, completeness."""
    from gptscratch.data import open_dataset

    dataset = open_dataset(name)
    if verify:
        dataset.verify()
    info = dataset.info()
    if verify:
        info["verified"] = True
    if json_output:
        print_json(info)
        return
    rows = [[key, format_number(info[key])] for key in ("name", "source", "kind", "tokenizer", "vocab_size", "dtype", "split_rule",
                                         "train_tokens", "val_tokens", "train_documents", "val_documents", "shards",
                                         "shard_tokens", "complete", "target_tokens", "created", "updated", "path")]
    rows.append(["size", _human_bytes(info["size_bytes"])])
    if verify:
        rows.append(["verified", "every shard matches its sha256"])
    show(table(dataset.name, ["field", "value"], rows))


@app.command("rm")
def rm_command(
    name: Annotated[str, typer.Argument(help="A prepared dataset's name or folder, or a trained tokenizer's name.")],
    tokenizer: Annotated[bool, typer.Option("--tokenizer", help="Remove the trained tokenizer of that name (when a "
                                                                "dataset has the same name).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Delete a prepared dataset (its shards and manifest) or a trained tokenizer.

    Datasets and checkpoints made with a tokenizer keep their own copy of it."""
    from gptscratch.data import remove_dataset
    from gptscratch.data.dataset import find_dataset_folder
    from gptscratch.tokenizers import trained

    if tokenizer or (find_dataset_folder(name) is None and trained.trained_folder(name) is not None):
        folder = trained.remove(name)
    else:
        folder = remove_dataset(name)
        if trained.trained_folder(name) is not None:
            log(f"a trained tokenizer named {name} remains; remove it with `gptscratch data rm {name} --tokenizer`")
    if json_output:
        print_json({"removed": str(folder)})
    else:
        log(f"removed {folder}")


@app.command("path")
def path_command(
    name: Annotated[Optional[str], typer.Argument(help="A dataset name (default: the data folder).")] = None,  # noqa: UP007
) -> None:
    """Print the data folder (or one dataset's folder)."""
    from gptscratch import paths

    if name is None:
        typer.echo(str(paths.data_root()))
        return
    from gptscratch.data import open_dataset

    typer.echo(str(open_dataset(name).path))
