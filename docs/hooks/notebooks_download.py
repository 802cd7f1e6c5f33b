"""MkDocs hook: every lesson page offers itself as a Jupyter notebook to download.

- `on_files`: docs/notebooks.py (the generator behind `make notebooks`, with jupytext) turns each lesson into a
  notebook, added to the site as notebooks/NN-*.ipynb — built from the lesson as it is at this build;
- `on_page_markdown`: a lesson page gets, under its title, a link to its notebook.

Without jupytext (the `notebooks` extra) the build stops with one line naming the extra: a site that silently
lost its downloads is what that prevents.
"""

from __future__ import annotations

import importlib.util
import posixpath
import sys
from pathlib import Path

SITE_DIR = "notebooks"  # where the notebooks live in the built site
_GENERATOR = Path(__file__).resolve().parent.parent / "notebooks.py"


def _generator():
    spec = importlib.util.spec_from_file_location("docs_notebooks", _GENERATOR)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _notebook_uri(lesson_uri: str) -> str | None:
    """lessons/02-positions.md → notebooks/02-positions.ipynb; None for a page that is not a lesson."""
    folder, name = posixpath.split(lesson_uri)
    if folder != "lessons" or not name[:2].isdigit() or not name.endswith(".md"):
        return None
    return f"{SITE_DIR}/{name[:-3]}.ipynb"


def on_files(files, *, config):
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    if importlib.util.find_spec("jupytext") is None:
        raise PluginError("the lessons' notebooks need jupytext: pip install -e '.[notebooks]' (or make venv)")
    import jupytext

    generator = _generator()
    urls = generator.project_urls()
    for lesson in generator.lesson_paths():
        uri = _notebook_uri(f"lessons/{lesson.name}")
        text = jupytext.writes(generator.notebook(lesson, urls), fmt="ipynb")
        files.append(File.generated(config, uri, content=text))
    return files


def on_page_markdown(markdown: str, *, page, config, files) -> str:
    uri = _notebook_uri(page.file.src_uri)
    if uri is None:
        return markdown
    title, newline, rest = markdown.partition("\n")
    name = posixpath.basename(uri)
    link = (f"[Download this lesson as a Jupyter notebook](../{uri}){{ download=\"{name}\" }}: its prose and "
            "every experiment, ready to run in Jupyter or Colab.")
    return f"{title}\n\n{link}\n{newline}{rest}" if title.startswith("# ") else f"{link}\n\n{markdown}"
