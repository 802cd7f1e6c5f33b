"""The `gptscratch` command line: root Typer app, global options, and the console entry point.

Startup cost matters (`gptscratch --help` should feel instant), so this package imports only
typer, rich and light gptscratch modules at the top level. Anything heavy (torch, numpy,
datasets, tiktoken, transformers) is imported inside command functions.

Error policy (see gptscratch/errors.py): `main()` turns a GptScratchError into one line
"error: <message>" on stderr and exits with its `exit_code` (2 for bad input, 1 otherwise);
the traceback is shown only with `--debug`.
"""

from __future__ import annotations

import os
import stat
import sys
import traceback
from typing import Annotated, Optional

import typer

from gptscratch import __version__
from gptscratch.accel import ENV_ACCEL
from gptscratch.cli import info as info_cli
from gptscratch.cli.render import print_error
from gptscratch.cli.settings import SETTINGS
from gptscratch.device import ENV_DEVICE, check_device_name
from gptscratch.errors import GptScratchError

app = typer.Typer(
    name="gptscratch",
    help="Train and sample GPT-style transformers written from scratch in PyTorch.",
    no_args_is_help=False,  # no arguments: guided mode on a terminal, help otherwise (cli/guided.py)
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"gptscratch {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    device: Annotated[
        str,
        typer.Option(
            "--device",
            envvar=ENV_DEVICE,
            metavar="auto|cpu|cuda|mps",
            help="Compute device; auto picks cuda > mps > cpu.",
        ),
    ] = "auto",
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only results on stdout; no logs or progress.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    no_accel: Annotated[
        bool,
        typer.Option(
            "--no-accel",
            help="Run only the model's own code with PyTorch's kernels: no measured speed-ups, auto precision "
                 "is fp32 on CPU (for stepping through the model in a debugger). Also GPTSCRATCH_ACCEL=0.",
        ),
    ] = False,
    version: Annotated[
        Optional[bool],  # noqa: UP007 - typer inspects the annotation at runtime on 3.10 too
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = None,
) -> None:
    """Global options apply to every command: gptscratch [OPTIONS] COMMAND ..."""
    # Reject a misspelt device now (cheap, no torch import); availability is checked when a
    # command actually needs the device.
    SETTINGS.update(device=device, quiet=quiet, debug=debug, no_accel=no_accel)
    check_device_name(device)
    if no_accel:  # the environment is the one switch gptscratch.accel reads (and torchrun children inherit)
        os.environ[ENV_ACCEL] = "0"
    if ctx.invoked_subcommand is None:
        from gptscratch.cli.guided import run_guided

        run_guided(app)  # a menu on a terminal; otherwise the help and exit status 2, without reading input


# ---------------------------------------------------------------------------------------
# Command registration: the ONE place where commands and groups are attached to `app`.
# Each cli module must import only typer/rich/light gptscratch modules at top level.
app.command("info")(info_cli.info)
from gptscratch.cli import chat as chat_cli  # noqa: E402
from gptscratch.cli import data as data_cli  # noqa: E402
from gptscratch.cli import eval as eval_cli  # noqa: E402
from gptscratch.cli import eval_accuracy as eval_accuracy_cli  # noqa: E402
from gptscratch.cli import generate as generate_cli  # noqa: E402
from gptscratch.cli import interpret as interpret_cli  # noqa: E402
from gptscratch.cli import learn as learn_cli  # noqa: E402
from gptscratch.cli import pretrained as pretrained_cli  # noqa: E402
from gptscratch.cli import serve as serve_cli  # noqa: E402
from gptscratch.cli import train as train_cli  # noqa: E402

app.add_typer(data_cli.app, name="data")
app.add_typer(train_cli.app, name="train")
app.command("generate")(generate_cli.generate)
app.command("chat")(chat_cli.chat)
app.command("serve")(serve_cli.serve)
eval_cli.app.command("accuracy")(eval_accuracy_cli.accuracy)
app.add_typer(eval_cli.app, name="eval")
app.add_typer(pretrained_cli.app, name="pretrained")
app.add_typer(interpret_cli.app, name="interpret")
app.add_typer(learn_cli.app, name="learn")
# ---------------------------------------------------------------------------------------


def _debug_requested(argv: list[str]) -> bool:
    # The flag may not have been parsed yet when the error happened (e.g. inside a callback).
    return SETTINGS.debug or "--debug" in argv


def _silence_broken_stdout() -> None:
    """After EPIPE (e.g. `gptscratch ... | head`), stop Python from failing again at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _is_pipe(stream) -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(stream.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def _stdout_broke(was_pipe: bool) -> bool:
    """Did stdout, a pipe when we started, break? rich points fd 1 at /dev/null when it sees EPIPE; typer wraps
    sys.stdout in click's PacifyFlushWrapper."""
    if not was_pipe:
        return False
    if type(sys.stdout).__name__ == "PacifyFlushWrapper":
        return True
    try:
        return not stat.S_ISFIFO(os.fstat(1).st_mode)
    except OSError:
        return False


def main(argv: list[str] | None = None) -> None:
    """Console entry point (`gptscratch` and `python -m gptscratch`). Always exits."""
    try:
        _main(argv)
    except SystemExit as done:
        if _torchrun_worker():
            _hard_exit(done.code)
        raise


def _torchrun_worker() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "torch.distributed" in sys.modules


def _hard_exit(code) -> None:
    """End a torchrun worker without interpreter finalization. By then the run's files are written and the
    process group destroyed, but gloo's C++ worker threads can still be reached from objects that Python only
    frees while shutting down, and destroying them then aborts the process ("terminate called without an
    active exception", SIGABRT) about once in tens of runs — torchrun then reports a finished run as failed.
    os._exit skips that teardown; the output streams are flushed first."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _main(argv: list[str] | None) -> None:
    args = train_cli.with_bare_resume(list(sys.argv[1:] if argv is None else argv))
    SETTINGS.update()
    command = typer.main.get_command(app)
    stdout_was_pipe = _is_pipe(sys.stdout)
    try:
        # Not standalone: typer/click still print --help and turn typer.Exit / Ctrl-C into a returned
        # exit code, but usage errors come back to us, so they get our one-line form (no command returns
        # a value, so what main() returns is an exit code or None).
        code = command.main(args=args, prog_name="gptscratch", standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into a returned 130 without a word: say what happened
            print_error("interrupted")
        sys.exit(code if isinstance(code, int) and not isinstance(code, bool) else 0)
    except SystemExit as done:
        # rich and typer answer a broken stdout (`gptscratch ... | head`) themselves with exit 1; like the
        # BrokenPipeError below, that is the reader's choice, not our failure.
        if done.code == 1 and _stdout_broke(stdout_was_pipe):
            _silence_broken_stdout()
            sys.exit(0)
        raise
    except GptScratchError as error:
        if _debug_requested(args):
            traceback.print_exc()
        from gptscratch.pretrained.registry import explain_missing_checkpoint  # `gpt2` not found: how to get it

        error = explain_missing_checkpoint(error)
        print_error(" ".join(str(error).split()))
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print_error("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        # The reader stopped early (`| head`): that is its choice, not our failure, so pipelines under
        # `set -o pipefail` keep working.
        _silence_broken_stdout()
        sys.exit(0)
    except Exception as error:  # a usage error found by click, or an actual bug: one line unless --debug
        kinds = {cls.__name__ for cls in type(error).__mro__}  # click's classes (typer may vendor its own copy)
        if "NoArgsIsHelpError" in kinds:  # a group without its command: the help is already printed
            sys.exit(2)
        if "ClickException" in kinds:  # unknown option, missing argument, a value of the wrong type, ...
            context = getattr(error, "ctx", None)
            hint = f"; see `{context.command_path} --help`" if context is not None else ""
            print_error(" ".join(error.format_message().split()).rstrip(".") + hint)
            sys.exit(getattr(error, "exit_code", 2))
        if "Abort" in kinds:  # Ctrl-C (older typer versions report it so) or end of input at a prompt
            interrupted = isinstance(error.__context__, KeyboardInterrupt)
            print_error("interrupted" if interrupted else "cancelled")
            sys.exit(130 if interrupted else 1)
        if _debug_requested(args):
            raise
        print_error(
            f"unexpected {type(error).__name__}: {' '.join(str(error).split())} "
            "(rerun with --debug for the traceback and please report it)"
        )
        sys.exit(1)


__all__ = ["app", "main"]
