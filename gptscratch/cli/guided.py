"""Guided mode: `gptscratch` with no arguments on a terminal asks a few questions instead of expecting flags.

    $ gptscratch
    What would you like to do?
      1  train     Train a GPT from scratch (or resume a run).
      2  generate  Generate text from a trained model.
      ...
    → a handful of questions with sensible defaults (Enter accepts them)
    → the equivalent command line, e.g. `gptscratch train --preset quick`, shown before anything runs
    → run it (or not), exactly as if it had been typed

Why show the command line? Guided mode is a way in, not a second interface: after one or two runs the learner
has seen the flags and can type them (or put them in a script). The menu lists only commands registered in the
Typer app when it runs, so it never offers something this installation cannot do; commands without a tailored
flow get a generic one (pick a sub-command, answer its required arguments, add any other options).

Without a terminal on both stdin and stdout (pipes, CI, scripts) it prints the help and exits with status 2,
as before, and never waits for input. Ctrl-C or Ctrl-D at a question leaves with "cancelled" and status 130.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.prompt import Confirm, Prompt
from rich.text import Text

from gptscratch.cli.settings import SETTINGS
from gptscratch.model.config import SIZES
from gptscratch.tokenizers import TOKENIZER_NAMES, trained_names

# Menu order (the learning order); registered commands not listed here follow, alphabetically.
MENU_ORDER = ("train", "generate", "eval", "evaluate", "interpret", "data", "pretrained")

Ask = Callable[..., str]


def is_interactive() -> bool:
    """True when a person can answer: both stdin and stdout are terminals."""
    return sys.stdin.isatty() and sys.stdout.isatty()


def menu_commands(app: typer.Typer) -> list[tuple[str, object]]:
    """The visible commands registered on `app`, in menu order."""
    group = typer.main.get_command(app)
    commands = {name: cmd for name, cmd in getattr(group, "commands", {}).items() if not cmd.hidden}
    ordered = [name for name in MENU_ORDER if name in commands]
    ordered += sorted(name for name in commands if name not in ordered)
    return [(name, commands[name]) for name in ordered]


# Duck-typed checks: typer ships its own copy of click, so isinstance against `click.Option` is unreliable.
def is_option(param) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def option_flags(command) -> set[str]:
    return {flag for param in command.params if is_option(param) for flag in param.opts}


def global_args() -> list[str]:
    """The global options this invocation was given, so the command that runs (and is shown) keeps them."""
    args = ["--device", SETTINGS.device] if SETTINGS.device != "auto" else []
    args += ["--quiet"] if SETTINGS.quiet else []
    args += ["--debug"] if SETTINGS.debug else []
    return args + (["--no-accel"] if SETTINGS.no_accel else [])


class Questions:
    """The prompts, on one console; `choose` accepts a number or a name."""

    def __init__(self, console: Console):
        self.console = console

    def ask(self, question: str, default: str | None = None) -> str:
        return Prompt.ask(question, default=default, console=self.console, show_default=default not in (None, ""))

    def confirm(self, question: str, default: bool = True) -> bool:
        return Confirm.ask(question, default=default, console=self.console)

    def choose(self, question: str, options: list[tuple[str, str]], default: str | None = None) -> str:
        for number, (name, help_text) in enumerate(options, 1):
            self.console.print(Text(f"  {number}  {name:<11} {help_text}"))
        names = [name for name, _ in options]
        default = default if default in names else names[0]
        while True:
            answer = self.ask(f"{question} (number or name)", default).strip()
            if answer.isdigit() and 1 <= int(answer) <= len(names):
                return names[int(answer) - 1]
            if answer in names:
                return answer
            self.console.print(f"choose 1–{len(names)} or one of: {', '.join(names)}", markup=False)


# -- flows: each returns the argument list after `gptscratch` -----------------------------------------------
def train_flow(command, q: Questions) -> list[str]:
    flags = option_flags(command)
    if not {"--preset", "--data", "--max-time"} <= flags:
        return generic_flow(["train"], command, q)
    data = q.ask("Text to train on: 'builtin' (Python's reference docs, no download) or a file/folder",
                 "builtin")
    if data == "builtin":
        args = ["train", "--preset", "quick"]
        budget = q.ask("Time budget, e.g. 90s or 5m (Enter: the preset's own, about 2 minutes)", "")
        if budget.strip():
            args += ["--max-time", budget.strip()]
    else:
        tokenizer = q.ask(f"Tokenizer ({', '.join([*TOKENIZER_NAMES, *trained_names()])})", "byte")
        size = Prompt.ask("Model size", choices=list(SIZES), default="mini", console=q.console)
        budget = q.ask("Time budget (e.g. 90s, 5m)", "5m")
        args = ["train", "--data", data, "--tokenizer", tokenizer, "--size", size, "--max-time", budget]
    if "--manual-backward" in flags and q.confirm(
            "Backpropagate with the hand-written backward passes (gptscratch/manual, slower)?", default=False):
        args.append("--manual-backward")
    return args


def generate_flow(command, q: Questions) -> list[str]:
    flags = option_flags(command)
    if not {"--prompt", "--max-tokens", "--preset"} <= flags:
        return generic_flow(["generate"], command, q)
    from gptscratch.generation.presets import DEFAULT_PRESET, PRESETS  # imports torch: the command will anyway
    args = ["generate"]
    checkpoint = q.ask("Checkpoint (Enter: the most recent run)", "")
    if checkpoint:
        args += ["--checkpoint", checkpoint]
    args += ["--prompt", q.ask("Prompt", "The ")]
    max_tokens = q.ask("Tokens to generate", "200")
    if max_tokens != "200":
        args += ["--max-tokens", max_tokens]
    preset = Prompt.ask("Sampling", choices=list(PRESETS), default=DEFAULT_PRESET, console=q.console)
    return args + (["--preset", preset] if preset != DEFAULT_PRESET else [])


def generic_flow(path: list[str], command, q: Questions) -> list[str]:
    """Any command: choose a sub-command of a group, answer required parameters, then optional extras."""
    subcommands = getattr(command, "commands", {})
    visible = [(name, cmd) for name, cmd in subcommands.items() if not cmd.hidden]
    if visible:
        options = [(name, cmd.get_short_help_str(limit=60)) for name, cmd in visible]
        if getattr(command, "invoke_without_command", False):
            options.insert(0, ("-", "the group's own command"))
        chosen = q.choose(f"{' '.join(path)}: which one?", options)
        if chosen != "-":
            return generic_flow(path + [chosen], subcommands[chosen], q)
    args = list(path)
    for param in command.params:
        if not param.required or getattr(param, "is_flag", False):
            continue
        choices = getattr(getattr(param, "type", None), "choices", None)
        choices = [str(choice) for choice in choices] if choices else None
        label = (param.opts[-1] if is_option(param) else param.name).lstrip("-")
        hint = getattr(param, "help", None)
        answer = Prompt.ask(f"{label}{f' ({hint})' if hint else ''}", choices=choices, console=q.console)
        args += [param.opts[0], answer] if is_option(param) else [answer]
    extra = q.ask(f"Other options (Enter for none; `gptscratch {' '.join(path)} --help` lists them)", "")
    return args + shlex.split(extra)


FLOWS = {"train": train_flow, "generate": generate_flow}


def _print_help_and_exit(app: typer.Typer) -> None:
    try:
        typer.main.get_command(app).main(args=["--help"], prog_name="gptscratch")
    except SystemExit:
        pass
    raise SystemExit(2)  # no command given: the usage-error status scripts already rely on


def run_guided(app: typer.Typer, console: Console | None = None) -> None:
    """Ask what to do, show the equivalent command line, run it. Always ends with SystemExit.

    Without a terminal it prints the help instead (status 2) and reads nothing."""
    if not is_interactive():
        _print_help_and_exit(app)
    console = console or Console(highlight=False)
    q = Questions(console)
    try:
        console.print("[bold]gptscratch[/bold] guided mode — Enter accepts a default, Ctrl-C leaves. "
                      "Every flag: gptscratch --help")
        commands = menu_commands(app)
        options = [(name, cmd.get_short_help_str(limit=60)) for name, cmd in commands]
        name = q.choose("What would you like to do?", options)
        command = dict(commands)[name]
        args = global_args() + FLOWS.get(name, lambda c, q: generic_flow([name], c, q))(command, q)
        console.print(Text("\nThe same as typing:\n  ") + Text(shlex.join(["gptscratch", *args]), style="bold"))
        if not q.confirm("Run it now?", default=True):
            console.print("Not run. Copy the line above to run it later.")
            raise SystemExit(0)
    except (KeyboardInterrupt, EOFError):
        console.print("\ncancelled")
        raise SystemExit(130) from None
    console.print()
    typer.main.get_command(app).main(args=args, prog_name="gptscratch")
