"""Jupyter notebooks from the lessons: `make notebooks` (or `python docs/notebooks.py [LESSON.md ...] [--out DIR]`).

One notebook per lesson (docs/lessons/NN-*.md → build/notebooks/NN-*.ipynb), read by jupytext from a Markdown
text made of the lesson:

- the lesson's prose (title, explanations, formulas, tables, diagrams and the code blocks that are only
  illustrations) becomes Markdown cells, wrapped in jupytext's `<!-- #region -->` … `<!-- #endregion -->` so
  that no illustration turns into a code cell. Relative links become absolute: a docs page → its page on the
  docs site, a source file → the file in the repository (both URLs from pyproject.toml's [project.urls]), since
  a notebook opened in Jupyter or Colab has no docs/ or gptscratch/ folder next to it;
- each runnable block (preceded by `<!-- run -->` or `<!-- run slow -->`, the convention tests/test_docs.py
  executes) becomes one code cell with the block's code unchanged: `python` as it is, `bash` as a `%%bash` cell
  (jupytext's own mapping of a shell block; Jupyter, JupyterLab and Colab run it) whose first line, `set -e`,
  stops at the first command that fails so that the cell fails too. Cells of `<!-- run slow -->` blocks carry
  the tag `slow` (they train for a while);
- a first code cell installs gptscratch when it is missing (`pip install gptscratch`), puts the folder of this
  kernel's scripts first on PATH (so `%%bash` finds the `gptscratch` installed next to the kernel's Python), and
  moves to a scratch working folder: the runs a lesson trains with `--out NAME` land there.

tests/test_notebooks.py checks the generation (one code cell per runnable block, code identical, prose kept) and,
in the slow suite, executes every notebook with nbclient.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
LESSONS = DOCS / "lessons"
OUT = REPO / "build" / "notebooks"
MARKER = re.compile(r"^<!--\s*run(\s+slow)?\s*-->\s*$")   # the same convention as tests/test_docs.py
FENCE = re.compile(r"^(```|~~~)\s*([\w+-]*)")
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
BASH_PREAMBLE = "set -e  # stop at the first command that fails (and fail the cell)\n"

# The notebook's language, for jupytext: without it, jupytext guesses it from the blocks (a lesson with a bash
# illustration before its first python block would get `%%python` cells and bash code cells).
HEADER = "---\njupyter:\n  kernelspec:\n    display_name: Python 3\n    language: python\n    name: python3\n---\n\n"
SETUP = '''\
# "{title}", a lesson of gptscratch's learning path (generated from docs/lessons/{name}.md).
# It needs the gptscratch package: `pip install gptscratch` (this cell installs it when it is missing, e.g. on
# Colab). The %%bash cells need bash: Linux, macOS and Colab have it; on Windows, use WSL or Git Bash.
import importlib.util, os, subprocess, sys, sysconfig, tempfile

if importlib.util.find_spec("gptscratch") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "gptscratch"], check=True)
# The %%bash cells run `gptscratch`: the one installed with this kernel's Python comes first on PATH.
os.environ["PATH"] = sysconfig.get_path("scripts") + os.pathsep + os.environ.get("PATH", "")
# A scratch working folder: everything this lesson writes (runs trained with --out, prepared files) goes here.
os.chdir(tempfile.mkdtemp(prefix="gptscratch-{name}-"))
print("working in", os.getcwd())'''


@dataclass(frozen=True)
class Runnable:
    """A fenced block marked to run: its language (python or bash), its code, whether it trains for a while."""
    language: str
    code: str
    slow: bool


def lesson_paths() -> list[Path]:
    return sorted(LESSONS.glob("[0-9][0-9]*-*.md"))  # 01-..., 01b-..., 02-...


def split_lesson(text: str) -> list[str | Runnable]:
    """The lesson as prose (str, markers removed) and runnable blocks, in order."""
    lines = text.splitlines()
    parts: list[str | Runnable] = []
    prose: list[str] = []
    pending: bool | None = None  # the marker seen (slow or not), waiting for its block
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        fence, marker = FENCE.match(line), MARKER.match(line)
        if marker:
            pending = bool(marker.group(1))
        elif fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)), len(lines))
            if pending is None:
                prose.extend(lines[i:end + 1])
            else:
                parts.append("\n".join(prose))
                parts.append(Runnable(fence.group(2), "\n".join(lines[i + 1:end]), pending))
                prose, pending = [], None
            i = end
        else:
            if line and pending is not None:
                raise ValueError(f"line {i + 1}: a run marker not followed by a code block")
            prose.append(lines[i])
        i += 1
    parts.append("\n".join(prose))
    return [p for p in parts if not isinstance(p, str) or p.strip()]


def project_urls() -> dict[str, str]:
    """pyproject.toml's [project.urls]: where the docs site and the repository live (named there only)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]


def absolute_link(target: str, page: Path, urls: dict[str, str]) -> str:
    """A relative link of `page` as an absolute URL: docs → the docs site, anything else → the repository."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
        return target
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve()
    try:
        in_docs = resolved.relative_to(DOCS).as_posix()
    except ValueError:
        in_docs = None
    if in_docs is not None:
        if in_docs.endswith(".md"):  # MkDocs' directory URLs: lessons/02-positions.md → lessons/02-positions/
            in_docs = re.sub(r"(^|/)index\.md$", r"\1", in_docs)
            in_docs = re.sub(r"\.md$", "/", in_docs)
        url = urls["Documentation"].rstrip("/") + "/" + in_docs
    else:
        url = urls["Repository"].rstrip("/") + "/blob/main/" + resolved.relative_to(REPO).as_posix()
    return url + (f"#{anchor}" if anchor else "")


def absolute_links(prose: str, page: Path, urls: dict[str, str]) -> str:
    """Rewrite the links of the prose, outside its code blocks (those show Markdown as written)."""
    out, in_fence = [], None
    for line in prose.splitlines():
        fence = FENCE.match(line.strip())
        if in_fence is None and fence:
            in_fence = fence.group(1)
        elif in_fence is not None and line.strip() == in_fence:
            in_fence = None
        elif in_fence is None:
            line = LINK.sub(lambda m: m.group(1) + absolute_link(m.group(2), page, urls) + m.group(3), line)
        out.append(line)
    return "\n".join(out)


def jupytext_markdown(parts: list[str | Runnable], page: Path, urls: dict[str, str]) -> str:
    """The lesson in jupytext's Markdown notebook format: prose in regions, runnable blocks as code blocks."""
    chunks = []
    for part in parts:
        if isinstance(part, str):
            chunks.append(f"<!-- #region -->\n{absolute_links(part.strip(chr(10)), page, urls)}\n<!-- #endregion -->")
        elif part.language in ("python", "bash"):
            preamble = BASH_PREAMBLE if part.language == "bash" else ""
            chunks.append(f"```{part.language}\n{preamble}{part.code}\n```")
        else:
            raise ValueError(f"{page.name}: cannot run a {part.language!r} block")
    return HEADER + "\n\n".join(chunks) + "\n"


def notebook(page: Path, urls: dict[str, str] | None = None):
    """The lesson as an nbformat notebook: a setup cell, then the lesson's prose and runnable blocks."""
    import jupytext
    import nbformat

    text = page.read_text(encoding="utf-8")
    parts = split_lesson(text)
    nb = jupytext.reads(jupytext_markdown(parts, page, urls or project_urls()), fmt="md")
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    runnables = [part for part in parts if isinstance(part, Runnable)]
    if len(code_cells) != len(runnables):  # jupytext read a block differently than written: never ship that
        raise ValueError(f"{page.name}: {len(runnables)} runnable blocks became {len(code_cells)} code cells")
    for cell in nb.cells:
        cell.metadata.pop("lines_to_next_cell", None)  # jupytext's layout hint, meaningless in an .ipynb
    for cell, block in zip(code_cells, runnables):
        if block.slow:
            cell.metadata["tags"] = ["slow"]
    title = next((line[2:].strip() for line in text.splitlines() if line.startswith("# ")), page.stem)
    setup = nbformat.v4.new_code_cell(SETUP.format(title=title, name=page.stem), metadata={"tags": ["setup"]})
    nb.cells.insert(0, setup)
    for number, cell in enumerate(nb.cells):
        cell.id = f"{page.stem}-{number}"  # stable ids: regenerating an unchanged lesson changes nothing
    nb.metadata = {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    }
    return nb


def write_notebooks(pages: list[Path], out: Path) -> list[Path]:
    """Write one .ipynb per lesson into `out` (atomically); returns the paths written."""
    import jupytext

    from gptscratch.atomic import atomic_write_text

    urls, written = project_urls(), []
    for page in pages:
        target = out / f"{page.stem}.ipynb"
        atomic_write_text(target, jupytext.writes(notebook(page, urls), fmt="ipynb"))
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Generate Jupyter notebooks from the lessons' runnable blocks.")
    parser.add_argument("lessons", nargs="*", type=Path, help="lesson pages (default: every lesson)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"output folder (default: {OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    for path in write_notebooks([p.resolve() for p in args.lessons] or lesson_paths(), args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
