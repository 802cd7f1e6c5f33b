"""`gptscratch learn`: the exercises of the learning path — list, start, check, hint, solution (library:
gptscratch.learn).

An exercise id is a lesson's number: 3, 03, 1b and 01b all work. torch is imported only by `check`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gptscratch.cli.render import log, markup_table, print_json, show, table
from gptscratch.learn import EXERCISES, find_exercise
from gptscratch.learn.workspace import DEFAULT_FOLDER

app = typer.Typer(help="Exercises for the learning path: write the function each lesson teaches and check it "
                       "against gptscratch's own (docs/lessons/exercises.md).", no_args_is_help=True)
Opt, Arg = typer.Option, typer.Argument
ID_HELP = "The exercise: a lesson's number, e.g. 3, 03 or 1b (`gptscratch learn list`)."
DIR_HELP = "Your work folder (created by `learn start`)."
IdArg = Annotated[str, Arg(metavar="ID", help=ID_HELP, show_default=False)]
DirOpt = Annotated[Path, Opt("--dir", help=DIR_HELP)]


@app.command("list")
def list_exercises(
    folder: DirOpt = DEFAULT_FOLDER,
    json_output: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The exercises: id, lesson, what to write and, when the work folder exists, how far you are."""
    from gptscratch.learn.workspace import status

    tracked = folder.is_dir()
    rows = [{"id": e.id, "lesson": e.title, "lesson_file": f"docs/lessons/{e.lesson}", "url": e.url, "write": e.task,
             "functions": list(e.functions), "file": e.filename,
             **({"status": status(e, folder)} if tracked else {})} for e in EXERCISES]
    if json_output:
        print_json(rows)
        return
    columns = ["id", "lesson", "write"] + (["status"] if tracked else [])
    show(table("exercises", columns, [[row[c] for c in columns] for row in rows]))
    log(_next_step(rows, folder) if tracked else f"start with `gptscratch learn start 01` (your files go to ./{folder})")


def _next_step(rows: list[dict], folder: Path) -> str:
    """What to do next in a work folder: check the first unfinished exercise, or start the first unstarted one."""
    for row in rows:
        if row["status"] == "not started":
            return f"next: `gptscratch learn start {row['id']}{_dir_flag(folder)}`"
        if not row["status"].startswith("passed") or "edited" in row["status"]:
            return f"next: `gptscratch learn check {row['id']}{_dir_flag(folder)}`"
    return "every exercise passes"


@app.command()
def start(
    exercise_id: IdArg,
    folder: DirOpt = DEFAULT_FOLDER,
    force: Annotated[bool, Opt("--force", help="Replace your file with a fresh stub (your work is lost).")] = False,
) -> None:
    """Copy the exercise's stub into your work folder (never over your work without --force); prints its path."""
    from gptscratch.learn.workspace import start as start_exercise

    exercise = find_exercise(exercise_id)
    started = start_exercise(exercise, folder, force)
    typer.echo(str(started.path))
    if started.created:
        log(f"write {', '.join(exercise.functions)} in {started.path}, then run "
            f"`gptscratch learn check {exercise.id}{_dir_flag(folder)}` (the lesson: {exercise.url})")
    else:
        log(f"{started.path} is already there, untouched since `learn start`")


@app.command()
def check(
    exercise_id: IdArg,
    folder: DirOpt = DEFAULT_FOLDER,
    solution: Annotated[bool, Opt("--solution", help="Check the shipped solution instead of your file.")] = False,
    json_output: Annotated[bool, Opt("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Run the exercise's checks on your file: a pass/fail table; exit 0 when all pass, 1 otherwise."""
    from gptscratch.learn.checking import run_checks
    from gptscratch.learn.workspace import learner_file, record

    exercise = find_exercise(exercise_id)
    path = exercise.solution_path if solution else learner_file(exercise, folder)
    results = run_checks(exercise, path)
    passed = sum(r.passed for r in results)
    if not solution:
        record(exercise, folder, path, passed, len(results))
    if json_output:
        print_json({"id": exercise.id, "lesson": exercise.title, "file": str(path), "passed": passed == len(results),
                    "checks": [r.to_dict() for r in results]})
    else:
        from rich.markup import escape

        rows = [[escape(r.name), "[green]pass[/]" if r.passed else "[red]FAIL[/]", escape(r.message)]
                for r in results]
        show(markup_table(escape(f"exercise {exercise.id}: {path}"), ["check", "result", "details"], rows))
        log(_summary(exercise, passed, len(results), folder))
    if passed < len(results):
        raise typer.Exit(1)


def _summary(exercise, passed: int, total: int, folder: Path) -> str:
    if passed == total:
        following = [e.id for e in EXERCISES]
        index = following.index(exercise.id)
        after = (f"; next: `gptscratch learn start {following[index + 1]}{_dir_flag(folder)}`"
                 if index + 1 < len(following) else "")
        return f"all {total} checks pass{after}"
    return f"{passed} of {total} checks pass; stuck? `gptscratch learn hint {exercise.id}`"


def _dir_flag(folder: Path) -> str:
    import shlex

    return "" if folder == DEFAULT_FOLDER else f" --dir {shlex.quote(str(folder))}"


@app.command()
def hint(exercise_id: IdArg) -> None:
    """A few lines to get you unstuck, without the solution."""
    exercise = find_exercise(exercise_id)
    typer.echo(f"Exercise {exercise.id} ({exercise.title}): {exercise.task}\n\n{exercise.hint}")


@app.command()
def solution(exercise_id: IdArg) -> None:
    """Print one solution of the exercise. This spoils it: try `learn hint` first."""
    typer.echo(find_exercise(exercise_id).solution_path.read_text(encoding="utf-8"), nl=False)
