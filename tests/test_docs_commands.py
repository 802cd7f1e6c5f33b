"""Docs check: every `gptscratch ...` command the documentation shows is one the command line accepts.

tests/test_docs.py *runs* the blocks marked `<!-- run -->`; most commands in the docs are not marked (they train
for hours, download GPT-2, need a GPU). This file reads all of them — every fenced code block of README.md and
docs/**/*.md, marked or not — and parses each command line against the real Typer app without running it: the
click command tree of `gptscratch.cli.app`, walked group → subcommand with `make_context` / `resolve_command`, with
`resilient_parsing=False`, so an unknown flag, a missing required argument, a value of the wrong type or a choice
the parser knows to be wrong fails here, with the page and line in the test id.

What counts as a command line inside a code block (any language but Python, TOML, YAML, JSON, Mermaid, Markdown):
    gptscratch ...                       also .venv/bin/gptscratch, and after `$ ` in a console listing (a block
                                         with `$ ` prompts: only its prompt lines are commands, the rest is output)
    python -m gptscratch ...             any python[3[.x]] path
    torchrun [its options] -m gptscratch ...
    ENV=value gptscratch ...             environment assignments (and env/time/nohup) in front are skipped
    ... | gptscratch ... > out           each command of a pipe, &&, || or ; list; redirections dropped
    gptscratch -c $(ls -d runs/* | ...)  a $(...) or `...` substitution is one word (and is searched too)
A line ending in `\\` continues on the next; `#` starts a comment. Placeholders such as RUN or CHECKPOINT are
fine where the command takes a string. So a code block must hold *real* command lines: a synopsis
(`data list [--json] | info NAME`) belongs in inline code or a table, where the second check below reads it.

Inline code and tables: a synopsis span — one starting with `gptscratch`, or with a command name followed by a
subcommand or an option (`eval perplexity [CKPT] [--data NAME]`, `train plot RUN`, `eval --checkpoint gpt2`) —
is read with synopsis rules: `[...]` is optional, `a|b` inside brackets are alternatives, `...` elides, and an
UPPERCASE word is a placeholder. Its command path must exist, every option it names must be an option of that
command, a positional shown in brackets must really be optional, and a span that shows arguments at all must
show every required one.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
NOT_SHELL = {"python", "py", "python3", "pycon", "toml", "yaml", "yml", "json", "jsonl", "mermaid", "markdown", "md"}
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
WRAPPERS = {"env", "time", "nohup", "exec", "command", "sudo"}
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SUBSTITUTED = "SUBSTITUTED"  # what a $(...) substitution becomes: one word, like any placeholder


# --- finding the command lines ----------------------------------------------------------------------------


@dataclass(frozen=True)
class DocCommand:
    page: Path
    line: int
    text: str              # the command as written (continuations joined)
    argv: tuple[str, ...]  # the arguments after `gptscratch`

    def where(self) -> str:
        return f"{self.page.relative_to(REPO).as_posix()}:{self.line}"


def code_blocks(text: str) -> list[tuple[int, str, list[str]]]:
    """(first line number of the body, language, body lines) of every fenced block of a Markdown text."""
    lines, blocks, i = text.splitlines(), [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening:
            fence = opening.group(2)
            end = next((j for j in range(i + 1, len(lines))
                        if lines[j].strip().startswith(fence[0] * len(fence))
                        and not lines[j].strip().strip(fence[0])), len(lines))
            indent = len(opening.group(1))
            body = [line[indent:] if line[:indent].isspace() else line.lstrip() for line in lines[i + 1:end]]
            blocks.append((i + 2, opening.group(3).lower(), body))
            i = end
        i += 1
    return blocks


def logical_lines(body: list[str], first: int) -> list[tuple[int, str]]:
    """Join `\\` continuations; in a console listing (some line starts with `$ `) keep only the prompt lines."""
    console = any(line.startswith("$ ") for line in body)
    joined, start, pending = [], None, ""
    for number, line in enumerate(body, first):
        if start is None:
            if console and not line.startswith("$ "):
                continue
            start, pending = number, line[2:] if console else line
        else:
            pending += " " + line.strip()
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        joined.append((start, pending))
        start, pending = None, ""
    if start is not None:
        joined.append((start, pending))
    return joined


def _substitutions(line: str) -> tuple[str, list[str]]:
    """Replace each $(...) and `...` (outside single quotes) by one placeholder word; return the inner texts too."""
    out, inner, i, quoted = [], [], 0, False
    while i < len(line):
        char = line[i]
        if char == "'" and not (i and line[i - 1] == "\\"):
            quoted = not quoted
        if not quoted and (line.startswith("$(", i) or char == "`"):
            if char == "`":
                end = line.find("`", i + 1)
                body_start, after = i + 1, end + 1
            else:
                depth, end = 0, i + 1
                while end < len(line):
                    depth += {"(": 1, ")": -1}.get(line[end], 0)
                    if depth == 0:
                        break
                    end += 1
                body_start, after = i + 2, end + 1
            if end < 0 or end >= len(line):
                raise ValueError(f"unclosed substitution in {line!r}")
            inner.append(line[body_start:end])
            out.append(SUBSTITUTED)
            i = after
            continue
        out.append(char)
        i += 1
    return "".join(out), inner


def gptscratch_argvs(line: str) -> list[list[str]]:
    """The argument lists after `gptscratch` of every gptscratch command in one shell line (see the docstring)."""
    line, inner = _substitutions(line)
    found = [argv for text in inner for argv in gptscratch_argvs(text)]
    line = re.sub(r"(?<![\w-])\d+(?=[<>])", "", line)  # 2>&1, 2> err: the fd number is not an argument
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    segments, current = [], []
    for token in tokens:
        if token and set(token) <= set("|&;()"):
            segments.append(current)
            current = []
        else:
            current.append(token)
    segments.append(current)
    for words in segments:
        words = _without_redirections(words)
        while words and (ASSIGNMENT.match(words[0]) or words[0] in WRAPPERS):
            words = words[1:]
        if not words:
            continue
        program = os.path.basename(words[0])
        if program == "gptscratch":
            found.append(words[1:])
        elif PYTHON.match(program) or program == "torchrun":
            for i in range(1, len(words) - 1):
                if words[i] == "-m" and words[i + 1] == "gptscratch":
                    found.append(words[i + 2:])
                    break
    return found


def _without_redirections(words: list[str]) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word and set(word) <= set("<>&") and set(word) & set("<>"):
            skip = True  # the operator and its target
        else:
            kept.append(word)
    return kept


def doc_commands(page: Path) -> list[DocCommand]:
    commands = []
    for first, language, body in code_blocks(page.read_text(encoding="utf-8")):
        if language in NOT_SHELL:
            continue
        for number, line in logical_lines(body, first):
            try:
                argvs = gptscratch_argvs(line)
            except ValueError as error:  # unbalanced quotes: fine in prose listings, not in a command
                if "gptscratch" in line:
                    raise AssertionError(f"{page.relative_to(REPO)}:{number}: cannot read {line!r}: {error}")
                continue
            commands.extend(DocCommand(page, number, line.strip(), tuple(argv)) for argv in argvs)
    return commands


# --- parsing against the real app -------------------------------------------------------------------------


class CommandLineError(Exception):
    """A documented command line the app rejects (the message is click's)."""


def _stop(ctx, param, value):
    """Stands in for --install-completion / --show-completion: parsing must not install or print shell code."""
    if value:
        raise typer.Exit()
    return value


def _kinds(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}  # click's classes (typer may vendor its own copy)


_ROOT = None


def root_command():
    """The click command tree of the real app (built once), with the completion options' side effects removed."""
    global _ROOT
    if _ROOT is None:
        from gptscratch.cli import app

        _ROOT = typer.main.get_command(app)
        for param in _ROOT.params:
            if param.name in ("install_completion", "show_completion"):
                param.callback = _stop
    return _ROOT


def _remaining(ctx) -> list[str]:
    """What a group left for its subcommand: the subcommand name and its arguments."""
    protected = ctx.__dict__.get("_protected_args")  # click >= 8.2 and typer's own copy
    if protected is None:
        protected = getattr(ctx, "protected_args", [])  # click < 8.2
    return [*protected, *ctx.args]


def _as_the_entry_point_passes_them(argv) -> list[str]:
    """The arguments as `gptscratch.cli.main` hands them to the parser: it gives a bare `train --resume` the
    value that means "the most recent run" (click has no options with optional values)."""
    from gptscratch.cli import train

    rewrite = getattr(train, "with_bare_resume", None)
    return rewrite(list(argv)) if rewrite is not None else list(argv)


def parse(argv: list[str] | tuple[str, ...]):
    """Parse `gptscratch *argv` as the app would, without invoking anything; return the innermost context.

    Raises CommandLineError with click's message for anything the parser rejects. --help, --version and the
    completion options end parsing early: that is success (they are valid wherever they parse)."""
    command, name, parent, args = root_command(), "gptscratch", None, _as_the_entry_point_passes_them(argv)
    try:
        while True:
            ctx = command.make_context(name, args, parent=parent, resilient_parsing=False)
            rest = _remaining(ctx) if hasattr(command, "resolve_command") else []
            if not rest:
                return ctx
            name, command, args = command.resolve_command(ctx, rest)
            parent = ctx
    except typer.Exit:
        return None
    except Exception as error:
        kinds = _kinds(error)
        if "Exit" in kinds and "ClickException" not in kinds:  # click's Exit, raised by older typer for --help
            return None
        if "ClickException" in kinds:
            message = error.format_message() if hasattr(error, "format_message") else str(error)
            raise CommandLineError(message or type(error).__name__) from None
        raise


# --- the documented command lines -------------------------------------------------------------------------


COMMANDS = [command for page in PAGES for command in doc_commands(page)]


def _ids(commands: list[DocCommand]) -> list[str]:
    seen: dict[str, int] = {}
    ids = []
    for command in commands:
        where = command.where()
        seen[where] = seen.get(where, 0) + 1
        ids.append(where if seen[where] == 1 else f"{where}#{seen[where]}")
    return ids


def test_the_docs_hold_many_command_lines():
    """A reader that finds nothing would pass everything: the docs hold well over a hundred command lines."""
    assert len(COMMANDS) >= 120, f"only {len(COMMANDS)} gptscratch command lines found in the docs"
    pages = {command.page.name for command in COMMANDS}
    assert {"README.md", "cli.md", "training.md", "02-positions.md", "interpret.md"} <= pages


@pytest.mark.parametrize("command", COMMANDS, ids=_ids(COMMANDS))
def test_documented_command_line_parses(command: DocCommand):
    try:
        parse(command.argv)
        problem = None
    except CommandLineError as error:
        problem = str(error)
    if problem is not None:
        pytest.fail(f"{command.where()}: `{command.text}` is not a valid command line: {problem}", pytrace=False)


# --- synopses in inline code and tables -------------------------------------------------------------------


@dataclass(frozen=True)
class Synopsis:
    page: Path
    line: int
    text: str

    def where(self) -> str:
        return f"{self.page.relative_to(REPO).as_posix()}:{self.line}"


INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*$")
ELISION = {"...", "…"}
STOPS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "2>&1"}


def synopses(page: Path) -> list[Synopsis]:
    """Inline code spans that state how to call a command (see the module docstring)."""
    text = page.read_text(encoding="utf-8")
    lines = text.splitlines()
    in_block = [False] * len(lines)
    for first, _language, body in code_blocks(text):
        for number in range(first - 1, first - 1 + len(body) + 1):  # the body and the closing fence
            if 0 <= number < len(lines):
                in_block[number] = True
        in_block[first - 2] = True  # the opening fence
    top = set(root_command().list_commands(None))
    found = []
    for number, line in enumerate(lines, 1):
        if in_block[number - 1]:
            continue
        for match in INLINE.finditer(line):
            span = match.group(1).replace("\\|", "|").strip()
            words = span.split()
            if len(words) < 2:
                continue
            if words[0] == "gptscratch":
                found.append(Synopsis(page, number, span))
            elif words[0] in top:
                group = root_command().get_command(None, words[0])
                subcommands = set(group.list_commands(None)) if hasattr(group, "list_commands") else set()
                second = words[1].split("|")[0]
                if second in subcommands or words[1].lstrip("[").startswith("-"):
                    found.append(Synopsis(page, number, span))
    return found


def _tokens(span: str) -> list[str]:
    return re.findall(r'"[^"]*"|\'[^\']*\'|\S+', span)


def _is_group(command) -> bool:
    return hasattr(command, "resolve_command")


def _options(command) -> dict[str, object]:
    """{option name: its parameter} of one command, --help/-h included."""
    names: dict[str, object] = {"--help": None, "-h": None}
    for param in command.params:
        if type(param).__name__.endswith("Option"):
            names.update((name, param) for name in [*param.opts, *param.secondary_opts])
    return names


def _takes_value(param) -> bool:
    return param is not None and not getattr(param, "is_flag", False) and not getattr(param, "count", False)


def check_synopsis(span: str) -> list[str]:
    """What is wrong with one synopsis span (empty: nothing). Brackets may open before and close after a word:
    `[--data NAME | --file PATH]` is one optional group of two alternatives."""
    tokens = _tokens(span)
    if tokens and tokens[0] == "gptscratch":
        tokens = tokens[1:]
    command, path = root_command(), ["gptscratch"]
    problems, positionals, shown, elided, depth, i = [], [], 0, False, 0, 0

    def where() -> str:
        return f"`{' '.join(path)}`"

    while i < len(tokens):
        token = tokens[i]
        i += 1
        core = token.strip("[]")
        depth += len(token) - len(token.lstrip("["))
        inside = depth > 0
        depth = max(depth - (len(token) - len(token.rstrip("]"))), 0)
        if core in STOPS and not inside:
            break  # a pipe or a redirection: the command ends here
        if core in ELISION or core in ("", "|"):
            elided = elided or core in ELISION
        elif _is_group(command) and not core.startswith("-") and not inside \
                and core.split("|")[0] in command.list_commands(None):
            names = core.split("|")  # `data prepare|download|list`: several commands of one group
            missing = [name for name in names if command.get_command(None, name) is None]
            if missing:
                problems.append(f"{where()} has no command {', '.join(missing)}")
            if len(names) > 1:
                break
            command = command.get_command(None, core)
            path.append(core)
        elif core.startswith("-"):
            shown += 1
            known = _options(command)
            for name in re.split(r"[|/]", core.split("=", 1)[0]):  # `--a|--b` and `--x/--no-x`
                if name not in known:
                    problems.append(f"{where()} has no option {name}")
                elif _takes_value(known[name]) and "=" not in core and not token.endswith("]") \
                        and i < len(tokens) and not tokens[i].lstrip("[").startswith("-") \
                        and tokens[i].strip("[]") not in ELISION | STOPS:
                    value = tokens[i]  # the option's value, e.g. NAME in `--data NAME`
                    i += 1
                    depth = max(depth + len(value) - len(value.lstrip("[")) - (len(value) - len(value.rstrip("]"))), 0)
        elif _is_group(command):
            if not PLACEHOLDER.match(core):
                problems.append(f"{where()} has no command {core}")
            break  # COMMAND in `gptscratch COMMAND --help` stands for any command
        else:
            shown += 1
            positionals.append((core, inside))

    if _is_group(command) or problems:
        return problems
    arguments = [p for p in command.params if type(p).__name__.endswith("Argument")]
    variadic = any(p.nargs == -1 for p in arguments)
    for index, (name, optional) in enumerate(positionals):
        if index >= len(arguments) and not variadic:
            problems.append(f"{where()} takes {len(arguments)} positional argument(s), not {name}")
            break
        if optional and arguments[min(index, len(arguments) - 1)].required:
            problems.append(f"{where()} shows {name} as optional ([{name}]), but it is required")
    required = [p for p in arguments if p.required]
    if shown and not elided and len(positionals) < len(required):
        problems.append(f"{where()} needs {' '.join(p.name.upper() for p in required)}")
    return problems


SYNOPSES = [synopsis for page in PAGES for synopsis in synopses(page)]


def test_the_docs_hold_synopses():
    assert len(SYNOPSES) >= 40, f"only {len(SYNOPSES)} synopses found"
    assert sum(s.page.name == "cli.md" for s in SYNOPSES) >= 20  # the command table


@pytest.mark.parametrize("synopsis", SYNOPSES, ids=_ids(SYNOPSES))
def test_documented_synopsis_matches_the_app(synopsis: Synopsis):
    problems = check_synopsis(synopsis.text)
    assert not problems, f"{synopsis.where()}: `{synopsis.text}`: " + "; ".join(problems)


# --- the checks themselves --------------------------------------------------------------------------------


@pytest.mark.parametrize("line, expected", [
    ("gptscratch train --preset quick   # a comment", [["train", "--preset", "quick"]]),
    ("GPTSCRATCH_HOME=/tmp/x gptscratch info --json", [["info", "--json"]]),
    ("env A=1 B=2 time gptscratch info", [["info"]]),
    ("echo 'def main(' | gptscratch generate --preset precise", [["generate", "--preset", "precise"]]),
    ("gptscratch generate -c RUN --each-line --json < prompts.txt > out.jsonl 2>&1",
     [["generate", "-c", "RUN", "--each-line", "--json"]]),
    ("gptscratch data list | head -1 && gptscratch train runs", [["data", "list"], ["train", "runs"]]),
    ("gptscratch generate -c $(ls -d runs/* | tail -1) --prompt 'a | b'",
     [["generate", "-c", SUBSTITUTED, "--prompt", "a | b"]]),
    ("gptscratch generate -c \"$(gptscratch train runs --json | jq -r '.[0].path')\"",
     [["train", "runs", "--json"], ["generate", "-c", SUBSTITUTED]]),
    ("python -m gptscratch info", [["info"]]),
    (".venv/bin/python3.11 -m gptscratch --version", [["--version"]]),
    (".venv/bin/gptscratch info", [["info"]]),
    ("torchrun --standalone --nproc_per_node=8 -m gptscratch train --preset full",
     [["train", "--preset", "full"]]),
    ("pipx install gptscratch          # or: pip install gptscratch", []),
    ("python -c \"import gptscratch\"", []),
])
def test_command_lines_are_found_in_shell_syntax(line, expected):
    assert gptscratch_argvs(line) == expected


def test_continuations_and_console_prompts():
    body = ["$ gptscratch interpret patch gpt2 \\", "    --demo --top 6", " target │ foil", "$ gptscratch info",
            "gptscratch looks like output here"]
    assert logical_lines(body, 10) == [(10, "gptscratch interpret patch gpt2 --demo --top 6"), (13, "gptscratch info")]
    assert logical_lines(["gptscratch train \\", "  --preset quick", "gptscratch info"], 1) == [
        (1, "gptscratch train --preset quick"), (3, "gptscratch info")]


@pytest.mark.parametrize("argv", [
    ["eval", "perplexity", "--file", "essay.txt"],              # README: the checkpoint is required
    ["eval", "--checkpoint", "gpt2"],                            # pretrained.md: eval has no --checkpoint
    ["eval", "perplexity"],
    ["train", "--no-such-flag"],
    ["train", "--max-steps", "many"],                            # not an integer
    ["train", "plot"],                                           # RUN is required
    ["train", "walk"],                                           # no such command
    ["generate", "--prompt"],                                    # the option needs a value
    ["eval", "accuracy", "RUN", "--limit", "0"],                 # below the parser's minimum
    ["eval"],                                                    # a group without its command exits 2
])
def test_the_parser_check_rejects_wrong_command_lines(argv):
    with pytest.raises(CommandLineError):
        parse(argv)


@pytest.mark.parametrize("argv", [
    [], ["--help"], ["-h"], ["--version"], ["eval", "perplexity", "--help"], ["train", "plot", "-h"],
    ["eval", "perplexity", "RUN", "--file", "essay.txt"], ["--install-completion"], ["--show-completion"],
    ["--device", "cpu", "--quiet", "info", "--json"], ["train", "--resume"], ["train", "--resume", "--max-steps", "9"],
])
def test_the_parser_check_accepts_right_command_lines(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOME", str(tmp_path))  # in case a completion option ran after all: it must not
    parse(argv)
    assert not list(tmp_path.iterdir()), "parsing a command line wrote files"


@pytest.mark.parametrize("span, problem", [
    ("eval perplexity [CKPT] [--data NAME | --file PATH]", "shows CKPT as optional"),   # the old cli.md row
    ("eval bench [CKPT] [--lengths 64,128]", "shows CKPT as optional"),
    ("eval --checkpoint gpt2", "has no option --checkpoint"),                         # the old pretrained.md
    ("gptscratch train --norm-placment post", "has no option --norm-placment"),
    ("gptscratch data list [--json] | info NAME", ""),                                # a pipe ends the command
    ("gptscratch data prepare|download|lint", "has no command lint"),
    ("pretrained export CHECKPOINT --format hf", "needs CHECKPOINT OUT_DIR"),
    ("train plot RUN EXTRA", "takes 1 positional argument(s)"),
])
def test_the_synopsis_check_finds_what_is_wrong(span, problem):
    problems = check_synopsis(span)
    if problem:
        assert any(problem in p for p in problems), problems
    else:
        assert not problems, problems
