"""`gptscratch data ...`: prepare tokenized datasets and list them.

    gptscratch data prepare builtin                      # Python's reference docs, byte tokens
    gptscratch data prepare ~/notes --tokenizer cl100k_base --name notes
    gptscratch data list --json

Thin layer: parse options, call gptscratch.data, render the result (tables or one line of
JSON on stdout, progress on stderr). gptscratch.data (numpy, tiktoken) is imported inside
the commands so that `gptscratch --help` stays fast.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from gptscratch.cli.render import format_number, log, print_json, progress_callback, show, table

DEFAULT_TOKENIZER = "byte"  # = gptscratch.data.DEFAULT_DATA_TOKENIZER (not imported: numpy)
TOKENIZER_CHOICES = "cl100k_base, r50k_base (gpt2), p50k_base, o200k_base, byte, char"

app = typer.Typer(
    help="Prepare text as tokenized train/val shards, and list prepared datasets.",
    no_args_is_help=True,
)


def _human_bytes(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size} B"


def _rows(summaries: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [s["name"], s["source"], s["tokenizer"], format_number(s["train_tokens"]), format_number(s["val_tokens"]),
         _human_bytes(s["size_bytes"]), s["path"]]
        for s in summaries
    ]


_COLUMNS = ["name", "source", "tokenizer", "train tokens", "val tokens", "size", "path"]


@app.command("prepare")
def prepare_command(
    source: Annotated[
        str,
        typer.Argument(help="'builtin' (Python's reference docs, no download), a text file, a folder, or a quoted glob."),
    ],
    tokenizer: Annotated[
        str, typer.Option("--tokenizer", "-t", help=f"Tokenizer: {TOKENIZER_CHOICES}.")
    ] = DEFAULT_TOKENIZER,
    name: Annotated[
        Optional[str],  # noqa: UP007 - typer inspects the annotation at runtime
        typer.Option("--name", "-n", help="Dataset name (default: <source>-<tokenizer>)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing dataset of that name made from another source/tokenizer.")
    ] = False,
    shard_tokens: Annotated[
        int, typer.Option("--shard-tokens", help="Maximum tokens per shard file.")
    ] = 100_000_000,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as one line of JSON.")] = False,
) -> None:
    """Tokenize SOURCE into train/val shards under the data folder (documents split ~90/10)."""
    from gptscratch.data import prepare

    with progress_callback("tokenizing") as progress:
        dataset = prepare(source, tokenizer, name, progress=progress, overwrite=overwrite, shard_tokens=shard_tokens)
    summary = dataset.summary()
    if json_output:
        print_json(summary)
    else:
        log(f"prepared {summary['name']}: {summary['train_tokens']:,} train / {summary['val_tokens']:,} val tokens")
        show(table(None, _COLUMNS, _rows([summary])))


@app.command("list")
def list_command(
    json_output: Annotated[bool, typer.Option("--json", help="Print the datasets as one line of JSON.")] = False,
) -> None:
    """List prepared datasets: name, source, tokenizer, token counts, size on disk, path."""
    from gptscratch import paths
    from gptscratch.data import list_datasets

    summaries = [dataset.summary() for dataset in list_datasets()]
    if json_output:
        print_json(summaries)
    elif not summaries:
        log(f"no datasets in {paths.data_root()}; create one with `gptscratch data prepare builtin`")
    else:
        show(table(None, _COLUMNS, _rows(summaries)))
