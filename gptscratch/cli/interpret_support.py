"""Shared pieces of the `gptscratch interpret` commands (gptscratch/cli/interpret.py): their common options,
checkpoint loading, reading the text to analyse (option or stdin), and how assessments are shown. Turning text
into ids and ids into labels is the library's (gptscratch/interpret/tokens.py)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer
from rich.markup import escape

from gptscratch.cli.render import announce_device, log
from gptscratch.errors import UsageError

Opt, Arg = typer.Option, typer.Argument
CheckpointArg = Annotated[Optional[str], Arg(help="Run folder, checkpoint folder, run name or pretrained name "
                                                  "(default: the most recent run).", show_default=False)]
CheckpointOpt = Annotated[Optional[str], Opt("--checkpoint", "-c", help="Same as the CHECKPOINT argument.",
                                              show_default=False)]
JsonOpt = Annotated[bool, Opt("--json", help="Print one JSON object on stdout instead of tables.")]
PlotOpt = Annotated[Optional[str], Opt("--plot", metavar="FILE.png", help="Also save a heatmap (needs matplotlib).")]
HtmlOpt = Annotated[Optional[str], Opt("--html", metavar="FILE.html",
                                       help="Also write an interactive page (one self-contained file, opens offline).")]
BosOpt = Annotated[bool, Opt("--bos/--no-bos", help="Put the end-of-text token in front, as TransformerLens does.")]
TextOpt = Annotated[Optional[str], Opt("--text", "-t", help="Text to read (default: stdin when piped).")]
DemoOpt = Annotated[bool, Opt("--demo", help="Run the built-in examples.")]
STYLES = {"Critical": "bold red", "Important": "yellow", "Moderate": "cyan", "Minimal": "dim",
          "previous-token": "bold green", "induction": "bold magenta", "duplicate-token": "magenta",
          "first-token": "blue", "current-token": "cyan", "uniform": "dim", "focused": "yellow", "mixed": ""}


def check_plot(plot, html=None) -> None:
    """Refuse a bad --plot or --html path before any analysis runs (and prints)."""
    if plot:
        from gptscratch.interpret.plots import check_plot_path

        check_plot_path(plot)
    if html:
        from gptscratch.paths import check_html_destination

        check_html_destination(html, "--html")


def save_page(path, view: str, title: str, loaded, data: dict) -> None:
    """Write the --html page; its title names the analysis and the model (a run's name, not "latest")."""
    from gptscratch.checkpoint import RUN_CHECKPOINTS
    from gptscratch.views import write_page

    name = loaded.path.parent.name if loaded.path.name in RUN_CHECKPOINTS else loaded.path.name
    log(f"wrote {write_page(path, view, f'{title}: {name}', data)}")


def load_model(checkpoint, checkpoint_option=None):
    from gptscratch.checkpoint import load_checkpoint

    if checkpoint is not None and checkpoint_option is not None and checkpoint != checkpoint_option:
        raise UsageError("give the checkpoint once: as the CHECKPOINT argument or as --checkpoint, not both")
    checkpoint = checkpoint if checkpoint is not None else checkpoint_option
    from gptscratch.model.lora import merge_lora

    loaded = load_checkpoint(checkpoint, device=announce_device())
    # LoRA adapters folded into the weights: the per-head analyses read weight matrices (W_O, W_QK) directly.
    merge_lora(loaded.model)
    log(f"checkpoint: {loaded.path}")
    return loaded


def styled(text: str, style_key: str) -> str:
    style = STYLES.get(style_key, "")
    return f"[{style}]{escape(text)}[/]" if style else escape(text)


def text_ids(loaded, text, bos: bool, demo: bool = False, flag: str = "--text") -> list[int]:
    """The ids of `text` (stdin when piped and no text given); `flag` names the option in messages."""
    if text is None and flag == "--text" and not sys.stdin.isatty():
        from gptscratch.textfile import read_stdin_text

        text = read_stdin_text()
    if not text:
        how = "pass --text \"...\" (or pipe it on stdin)" if flag == "--text" else f"give {flag} some text"
        raise UsageError(f"no text to analyse; {how}, or try --demo")
    from gptscratch.interpret.tokens import check_context, encode_text

    try:
        ids = encode_text(loaded.tokenizer, text, bos)
    except UsageError as error:
        if not demo:
            raise
        raise UsageError(f"the built-in demo text does not fit this model's tokenizer ({error}); "
                         "pass your own --text instead of --demo") from None
    return check_context(ids, loaded.model.config.context_length, flag)


def save_plot(path, maps, title=""):
    from gptscratch.interpret.plots import save_heatmaps

    log(f"plot: {save_heatmaps(path, maps, title)}")


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
