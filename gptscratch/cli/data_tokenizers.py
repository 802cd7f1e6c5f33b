"""`gptscratch data train-tokenizer` and `data tokenizer-report`: train a BPE, compare tokenizers.

    gptscratch data train-tokenizer builtin --vocab-size 2048 --name docs2k
    gptscratch data train-tokenizer corpus.jsonl --vocab-size 32768 --special-tokens '<|sep|>'
    gptscratch data prepare builtin --tokenizer docs2k
    gptscratch data tokenizer-report builtin --tokenizer byte --tokenizer docs2k --tokenizer cl100k_base

Registered on the `data` group by cli/data.py. The library side is gptscratch.data.train_tokenizer and
gptscratch.data.tokenizer_report.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer

from gptscratch.cli.render import format_number, log, print_json, progress_callback, show, table, warn

SOURCE_HELP = ("'builtin', a text file, folder or quoted glob, .jsonl/.json/.parquet/.csv files, fineweb-edu, "
               "hf:ORG/NAME[:CONFIG] — anything `data prepare` reads.")
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as one line of JSON.")]
MaxBytesOption = Annotated[Optional[str], typer.Option(  # noqa: UP007
    "--max-bytes", help="Read at most this much text (e.g. 100M, 2G); default: all of it.")]


def _max_bytes(text: Optional[str]) -> Optional[int]:  # noqa: UP007
    """'100M', '2G', '500k', '10MB' -> a byte count (the counts of gptscratch.training's parse_count)."""
    import re

    from gptscratch.errors import UsageError
    from gptscratch.training.config import parse_count

    if text is None:
        return None
    try:
        return parse_count(re.sub(r"(?i)([kmgt])b$", r"\1", text.strip()))
    except UsageError:
        raise UsageError(f"--max-bytes {text!r} is not a size; write e.g. 500k, 100M or 2G") from None


def train_tokenizer_command(
    source: Annotated[str, typer.Argument(help=SOURCE_HELP)],
    vocab_size: Annotated[int, typer.Option("--vocab-size", "-v", help="Ids in all: 256 bytes + merges + special "
                                                                       "tokens.")],
    name: Annotated[Optional[str], typer.Option(  # noqa: UP007
        "--name", "-n", help="Name to use it by (--tokenizer NAME); default <source>-bpe<vocab size>.")] = None,
    pattern: Annotated[str, typer.Option(
        "--pattern", help="Pre-split: gpt4 (cl100k_base's regex), gpt2, or none (no split).")] = "gpt4",
    special_tokens: Annotated[Optional[list[str]], typer.Option(  # noqa: UP007
        "--special-tokens", help="A special token after <|endoftext|>; repeat the flag for more.")] = None,
    trainer: Annotated[str, typer.Option(
        "--trainer", help="fast (rustbpe) or python (the readable loop of gptscratch/tokenizers/bpe.py).")] = "fast",
    max_bytes: MaxBytesOption = None,
    text_field: Annotated[str, typer.Option("--text-field", help="Column holding the text (tables, Hub).")] = "text",
    split: Annotated[str, typer.Option("--split", help="Split of a Hub dataset to read.")] = "train",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a tokenizer of that name.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Train a byte-pair-encoding tokenizer on SOURCE and keep it in the cache under a name.

    Use it as --tokenizer NAME in data prepare and train; checkpoints carry their own copy."""
    from gptscratch.data.train_tokenizer import train_tokenizer

    with progress_callback("reading") as progress:
        tokenizer = train_tokenizer(source, vocab_size, name=name, pattern=pattern, special_tokens=special_tokens or (),
                                    trainer=trainer, overwrite=overwrite, max_bytes=_max_bytes(max_bytes),
                                    progress=progress, text_field=text_field, split=split)
    summary = tokenizer.summary()
    if json_output:
        print_json(summary)
        return
    log(f"trained {summary['name']}: {summary['vocab_size']:,} tokens ({summary['merges']:,} merges) on "
        f"{summary['trained_bytes']:,} bytes in {summary['seconds']:.1f} s; use it with --tokenizer {summary['name']}")
    show(table(None, ["field", "value"], [[key, format_number(summary[key])] for key in
                                          ("name", "vocab_size", "merges", "pattern", "trainer", "source",
                                           "trained_bytes", "seconds", "path")]))


def _longest(pieces: list[str], shown: int = 3, width: int = 24) -> str:
    """The first few longest tokens, each cut to `width` characters (--json has all five, whole)."""
    return "  ".join(repr(piece if len(piece) <= width else piece[:width] + "…") for piece in pieces[:shown])


def trained_tokenizers() -> list:
    """Every trained tokenizer in the cache that loads; a broken one is named on stderr and left out (`data list`
    and a default `tokenizer-report` show the others)."""
    from gptscratch.errors import GptScratchError
    from gptscratch.tokenizers import TrainedTokenizer, trained_names

    usable = []
    for name in trained_names():
        try:
            usable.append(TrainedTokenizer.named(name))
        except GptScratchError as error:
            warn(f"tokenizer {name} is broken, left out: {error}")
    return usable


def tokenizer_report_command(
    source: Annotated[str, typer.Argument(help=SOURCE_HELP)],
    tokenizers: Annotated[Optional[list[str]], typer.Option(  # noqa: UP007
        "--tokenizer", "-t", help="A tokenizer to compare (repeat); default: byte, cl100k_base and every trained "
                                  "one.")] = None,
    max_bytes: Annotated[str, typer.Option("--max-bytes", help="How much of the source to read.")] = "10M",
    text_field: Annotated[str, typer.Option("--text-field", help="Column holding the text (tables, Hub).")] = "text",
    split: Annotated[str, typer.Option("--split", help="Split of a Hub dataset to read.")] = "train",
    json_output: JsonOption = False,
) -> None:
    """Compare tokenizers on the same text: bytes per token, tokens per word, vocabulary used, longest tokens."""
    from gptscratch.data.tokenizer_report import tokenizer_report

    names = tokenizers or ["byte", "cl100k_base", *(tokenizer.name for tokenizer in trained_tokenizers())]
    report = tokenizer_report(source, names, max_bytes=_max_bytes(max_bytes), text_field=text_field, split=split)
    if json_output:
        print_json(report)
        return
    rows: list[list[Any]] = [
        [r["tokenizer"], format_number(r["vocab_size"]), format_number(r["tokens"]), r["bytes_per_token"], r["tokens_per_word"], r["ratio_to_first"],
         f"{100 * r['vocab_used']:.1f}%", _longest(r["longest_tokens"])] for r in report["tokenizers"]]
    title = f"{report['source']}: {report['bytes']:,} bytes, {report['words']:,} words, {report['documents']:,} documents"
    show(table(title, ["tokenizer", "vocab", "tokens", "bytes/token", "tokens/word", "vs first", "vocab used",
                       "longest tokens"], rows))
