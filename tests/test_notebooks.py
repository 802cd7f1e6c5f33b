"""The lessons as Jupyter notebooks (docs/notebooks.py, `make notebooks`): generated right, and they run.

Generation (fast): each lesson becomes one notebook whose code cells are a setup cell and then exactly the
lesson's runnable blocks — found here by tests/test_docs.py's own parser, so the two cannot drift — with the code
unchanged, `<!-- run slow -->` cells tagged `slow`, every other line of the lesson kept as Markdown, and every
relative link turned into an absolute URL that points at a file of this repository.

Execution (slow): every notebook runs top to bottom in a Jupyter kernel of this venv (nbclient), with
GPTSCRATCH_HOME, the scratch folder and the kernel's working directory under tmp_path and Hugging Face offline,
and no cell may fail. The cells tagged `slow` (the `<!-- run slow -->` experiments, which train) are left out
unless NOTEBOOKS_RUN_SLOW_CELLS=1: tests/test_docs.py's slow tests already run exactly that code, in the same
order and namespace, and running it again here would add far more CI time than evidence. Measured on a 2-core
AMD EPYC (family 26, Zen 5) shared with other jobs (load average about 5): the 16 notebooks took 2–2.5 minutes without those
cells and 37 minutes with them. Without them every lesson still runs its setup cell and its quick cells, %%bash
cells included (lessons 1, 1b, 3, 6 and 14), and a failing command is shown to fail its cell.
"""

from __future__ import annotations

import importlib.util
import os
import posixpath
import re
import sys
from pathlib import Path

import pytest

from test_docs import MARKER, runnable_blocks
from test_landing import file_behind

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("jupytext")

REPO = Path(__file__).resolve().parent.parent
LESSONS = sorted((REPO / "docs" / "lessons").glob("[0-9][0-9]*-*.md"))
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _generator():
    spec = importlib.util.spec_from_file_location("docs_notebooks", REPO / "docs" / "notebooks.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


notebooks = _generator()


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> dict[str, object]:
    """{lesson stem: notebook}, written to disk by the generator and read back with nbformat."""
    out = tmp_path_factory.mktemp("notebooks")
    assert notebooks.main(["--out", str(out)]) == 0
    written = sorted(out.glob("*.ipynb"))
    assert [p.stem for p in written] == [p.stem for p in LESSONS]
    return {p.stem: nbformat.read(p, as_version=4) for p in written}


def _tags(cell) -> list[str]:
    return list(cell.metadata.get("tags", []))


def _without_link_targets(text: str) -> str:
    return LINK.sub("]()", text)


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_one_code_cell_per_runnable_block_with_the_lessons_code(lesson, generated):
    nb = generated[lesson.stem]
    nbformat.validate(nb)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert nb.cells[0] is code[0] and _tags(code[0]) == ["setup"]
    blocks = runnable_blocks(lesson)
    assert len(blocks) >= 2 and len(code) - 1 == len(blocks)
    for cell, block in zip(code[1:], blocks):
        if block.language == "python":
            assert cell.source == block.code, block.where()
        else:
            assert cell.source == "%%bash\n" + notebooks.BASH_PREAMBLE + block.code, block.where()
        assert ("slow" in _tags(cell)) == block.slow, block.where()
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_other_line_of_the_lesson_is_kept_as_markdown(lesson, generated):
    lines = lesson.read_text(encoding="utf-8").splitlines()
    in_blocks = set()
    for block in runnable_blocks(lesson):
        in_blocks.update(range(block.line - 1, block.line + len(block.code.splitlines()) + 1))  # fences included
    prose = [line for number, line in enumerate(lines)
             if number not in in_blocks and not MARKER.match(line.strip()) and line.strip()]
    markdown = [line for cell in generated[lesson.stem].cells if cell.cell_type == "markdown"
                for line in cell.source.splitlines() if line.strip()]
    assert [_without_link_targets(line) for line in markdown] == [_without_link_targets(line) for line in prose]
    assert markdown[0] == lines[0] and lines[0].startswith("# ")  # the title opens the lesson's first cell


def test_links_are_absolute_and_point_at_files_of_the_repository(generated):
    urls = notebooks.project_urls()
    kinds, broken = set(), []
    for stem, nb in generated.items():
        for cell in nb.cells:
            if cell.cell_type != "markdown":
                continue
            text = re.sub(r"```.*?```", "", cell.source, flags=re.S)  # code blocks show Markdown as written
            for target in LINK.findall(text):
                if target.startswith("#"):
                    continue
                assert re.match(r"^https?://", target), f"{stem}: relative link left: {target}"
                path = file_behind(target, urls)
                if path is not None:
                    kinds.add("site" if target.startswith(urls["Documentation"]) else "repository")
                    if not path.exists():
                        broken.append(f"{stem}: {target} ({path.relative_to(REPO)} does not exist)")
    assert kinds == {"site", "repository"}  # lessons link both other pages and source files
    assert not broken, "\n".join(broken)


def test_illustrations_stay_markdown_and_a_stray_marker_is_refused(tmp_path):
    lesson = tmp_path / "99-example.md"
    lesson.write_text("# 99. Example\n\nInstall it:\n\n```bash\npip install gptscratch\n```\n\n"
                      "```mermaid\nflowchart LR\n  a --> b\n```\n\n<!-- run -->\n```python\nx = 1\n```\n\n"
                      "<!-- run slow -->\n\n```bash\ngptscratch info\n```\n\nThe end.\n", encoding="utf-8")
    nb = notebooks.notebook(lesson, notebooks.project_urls())
    kinds = [(cell.cell_type, _tags(cell)) for cell in nb.cells]
    assert kinds == [("code", ["setup"]), ("markdown", []), ("code", []), ("code", ["slow"]), ("markdown", [])]
    assert "```bash\npip install gptscratch\n```" in nb.cells[1].source and "```mermaid" in nb.cells[1].source
    assert nb.cells[3].source.startswith("%%bash\nset -e") and nb.cells[3].source.endswith("\ngptscratch info")
    assert "pip install gptscratch" in nb.cells[0].source and "os.chdir(tempfile.mkdtemp(" in nb.cells[0].source
    lesson.write_text("# 99. Example\n\n<!-- run -->\nSome prose, not a block.\n", encoding="utf-8")
    with pytest.raises(ValueError, match="run marker not followed by a code block"):
        notebooks.notebook(lesson, notebooks.project_urls())


def test_the_docs_site_offers_each_lesson_as_a_notebook():
    """docs/hooks/notebooks_download.py, run as MkDocs runs it: the notebooks are files of the site, and each lesson
    page links to its own, under the title."""
    pytest.importorskip("mkdocs")
    from types import SimpleNamespace

    from mkdocs.config import load_config
    from mkdocs.structure.files import File, get_files

    config = load_config(str(REPO / "mkdocs.yml"))
    files = config.plugins.on_files(get_files(config), config=config)
    for lesson in LESSONS:
        site_file = files.get_file_from_path(f"notebooks/{lesson.stem}.ipynb")
        assert site_file is not None, lesson.name
        nb = nbformat.reads(site_file.content_string, as_version=4)
        assert [c.source for c in nb.cells] == [c.source for c in notebooks.notebook(lesson).cells]
    lesson = SimpleNamespace(file=File("lessons/02-positions.md", config.docs_dir, config.site_dir, True))
    text = (REPO / "docs" / "lessons" / "02-positions.md").read_text(encoding="utf-8")
    out = config.plugins.on_page_markdown(text, page=lesson, config=config, files=files)
    title, _, rest = out.partition("\n")
    assert title == text.splitlines()[0]
    link = re.search(r"\]\(([^)]+\.ipynb)\)", rest.split("\n## ", 1)[0]).group(1)
    assert files.get_file_from_path(posixpath.normpath(f"lessons/{link}")).src_uri == "notebooks/02-positions.ipynb"
    other = SimpleNamespace(file=File("training.md", config.docs_dir, config.site_dir, True))
    assert ".ipynb" not in config.plugins.on_page_markdown("# Training\n", page=other, config=config, files=files)


# --- execution ---------------------------------------------------------------------------------------------


def _execute(nb, tmp_path: Path, monkeypatch) -> None:
    """Run `nb` in place in a python3 kernel of this interpreter, everything it writes under tmp_path."""
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("TMPDIR", str(tmp_path))                         # the setup cell's scratch folder
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))  # no user-registered "python3" kernel
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("COLUMNS", "200")
    client = nbclient.NotebookClient(nb, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()


def _scratch_folder(nb) -> Path:
    printed = "".join(out.get("text", "") for out in nb.cells[0].outputs)
    match = re.search(r"^working in (.+)$", printed, flags=re.M)
    assert match, f"the setup cell printed {printed!r}"
    return Path(match.group(1))


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_notebook_runs_without_an_error(lesson, tmp_path, monkeypatch):
    nb = notebooks.notebook(lesson, notebooks.project_urls())
    if os.environ.get("NOTEBOOKS_RUN_SLOW_CELLS") != "1":
        nb.cells = [cell for cell in nb.cells if "slow" not in _tags(cell)]
    try:
        _execute(nb, tmp_path, monkeypatch)
    except Exception as error:  # nbclient's CellExecutionError names the cell and shows its traceback
        pytest.fail(f"{lesson.name}: {str(error)[-3000:]}", pytrace=False)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code), "a cell was not executed"
    assert not [out for cell in code for out in cell.outputs if out.output_type == "error"]
    assert _scratch_folder(nb).is_relative_to(tmp_path.resolve())


@pytest.mark.slow
def test_a_failing_command_fails_its_cell(tmp_path, monkeypatch):
    """`set -e`: a failing command in the middle of a bash cell fails the cell, even when the last one succeeds."""
    nbclient = pytest.importorskip("nbclient")
    lesson = tmp_path / "99-failing.md"
    lesson.write_text("# 99. Failing\n\n<!-- run -->\n```bash\ngptscratch train --no-such-flag\n"
                      "gptscratch --version\n```\n", encoding="utf-8")
    nb = notebooks.notebook(lesson, notebooks.project_urls())
    with pytest.raises(nbclient.exceptions.CellExecutionError, match="CalledProcessError"):
        _execute(nb, tmp_path, monkeypatch)
    assert _scratch_folder(nb).is_relative_to(tmp_path.resolve())
