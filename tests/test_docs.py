"""Docs check: the lessons and README cannot rot.

Convention (documented in docs/lessons/index.md): a fenced code block whose previous non-blank line is
`<!-- run -->` is executed by this file; `<!-- run slow -->` only in the slow suite (it trains). Within one page
the blocks run in order, sharing one scratch folder (the working directory), one GPTSCRATCH_HOME and, for Python
blocks, one namespace — so a page can train a run in one block and sample it in the next.

    ```python   executed with exec(); asserts in the block state what the learner should see
    ```bash     every line (after `\\` continuations are joined and comments dropped) must be a `gptscratch ...`
                command; it runs through the real entry point (`python -m gptscratch`) and must exit 0

Blocks without a marker are illustrations (installation commands, output listings) and are never run.
Also checked here: every relative link in the docs points at an existing file, every lesson has the parts the
learning path promises, every page is in mkdocs.yml's nav, and `mkdocs build --strict` passes.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from helpers import chromium_path

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
LESSONS = DOCS / "lessons"
PAGES = sorted([REPO / "README.md", *DOCS.rglob("*.md")])
MARKER = re.compile(r"^<!--\s*run(\s+slow)?\s*-->\s*$")
FENCE = re.compile(r"^(```|~~~)\s*([\w+-]*)")


@dataclass
class Block:
    page: Path
    line: int
    language: str
    code: str
    slow: bool

    def where(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}"


def runnable_blocks(page: Path) -> list[Block]:
    """The marked blocks of a page, in order. A marker not followed by a fenced block is an error."""
    lines = page.read_text(encoding="utf-8").splitlines()
    blocks, pending, i = [], None, 0
    while i < len(lines):
        line = lines[i].strip()
        fence = FENCE.match(line)
        if MARKER.match(line):
            pending = (i + 1, bool(MARKER.match(line).group(1)))
        elif fence:
            end = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == fence.group(1)), len(lines))
            if pending is not None:
                blocks.append(Block(page, i + 1, fence.group(2), "\n".join(lines[i + 1:end]), pending[1]))
            pending, i = None, end
        elif line and pending is not None:
            raise AssertionError(f"{page.relative_to(REPO)}:{pending[0]}: run marker not followed by a code block")
        i += 1
    return blocks


def shell_commands(block: Block) -> list[list[str]]:
    """The gptscratch commands of a bash block, as argument lists (continuations joined, comments dropped)."""
    commands = []
    for line in block.code.replace("\\\n", " ").splitlines():
        argv = shlex.split(line, comments=True)
        if not argv:
            continue
        assert argv[0] == "gptscratch", f"{block.where()}: only gptscratch commands can run, got {line!r}"
        commands.append(argv[1:])
    return commands


def run_block(block: Block, namespace: dict, cwd: Path) -> None:
    if block.language == "python":
        code = compile(block.code, block.where(), "exec")
        exec(code, namespace)  # noqa: S102 - running the documentation is the point
        return
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    for args in shell_commands(block):
        result = subprocess.run([sys.executable, "-m", "gptscratch", *args], cwd=cwd, env=env,
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, (f"{block.where()}: `gptscratch {shlex.join(args)}` exited "
                                        f"{result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")


ALL_BLOCKS = {page: runnable_blocks(page) for page in PAGES}
PAGE_IDS = {page: str(page.relative_to(REPO)) for page in PAGES}


def test_marked_blocks_are_python_or_gptscratch_commands():
    blocks = [b for page in PAGES for b in ALL_BLOCKS[page]]
    assert len(blocks) >= 20  # the lessons carry experiments: if this drops, markers were lost
    for block in blocks:
        assert block.language in ("python", "bash"), f"{block.where()}: cannot run a {block.language!r} block"
        if block.language == "bash":
            assert shell_commands(block), f"{block.where()}: empty bash block"


def _run_page(page: Path, include_slow: bool, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    for block in ALL_BLOCKS[page]:
        if block.slow and not include_slow:
            continue
        run_block(block, namespace, tmp_path)


FAST_PAGES = [p for p in PAGES if any(not b.slow for b in ALL_BLOCKS[p])]
SLOW_PAGES = [p for p in PAGES if any(b.slow for b in ALL_BLOCKS[p])]


@pytest.mark.parametrize("page", FAST_PAGES, ids=[PAGE_IDS[p] for p in FAST_PAGES])
def test_page_runs(page, tmp_path, monkeypatch):
    """The quick blocks of each page (Python snippets, --help, --dry-run, data preparation)."""
    _run_page(page, False, tmp_path, monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW_PAGES, ids=[PAGE_IDS[p] for p in SLOW_PAGES])
def test_page_runs_with_its_training_experiments(page, tmp_path, monkeypatch):
    _run_page(page, True, tmp_path, monkeypatch)


LINK = re.compile(r"\]\(([^)\s]+)\)")


def test_relative_links_point_at_existing_files():
    broken = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
        for target in LINK.findall(text):
            if re.match(r"^[a-z]+:", target) or target.startswith("#"):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            if not path.exists():
                broken.append(f"{PAGE_IDS[page]} → {target}")
    assert not broken, "broken links:\n" + "\n".join(broken)


LESSON_PAGES = sorted(LESSONS.glob("[0-9][0-9]*-*.md"))  # 01-..., 01b-..., 02-...
REQUIRED_SECTIONS = ("## The idea", "## The formula", "## The shapes", "## The picture", "## In the code",
                     "## Experiment", "### What you should see", "## Exercise")


@pytest.mark.parametrize("lesson", LESSON_PAGES, ids=[p.stem for p in LESSON_PAGES])
def test_lesson_has_every_part(lesson):
    text = lesson.read_text(encoding="utf-8")
    for section in REQUIRED_SECTIONS:
        assert f"\n{section}\n" in text, f"{lesson.name}: missing section {section!r}"
    assert "```mermaid" in text, f"{lesson.name}: no diagram"
    assert "](../../gptscratch/" in text, f"{lesson.name}: no link to the source"
    assert any(b.language == "bash" for b in ALL_BLOCKS[lesson]), f"{lesson.name}: no runnable CLI experiment"


def test_learning_path_covers_the_curriculum():
    assert len(LESSON_PAGES) == 16
    index = (LESSONS / "index.md").read_text(encoding="utf-8")
    for lesson in LESSON_PAGES:
        assert f"({lesson.name})" in index, f"lessons/index.md does not link {lesson.name}"


def test_every_page_is_in_the_site_navigation():
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8").split("\nnav:", 1)[1]
    listed = set(re.findall(r"([\w./-]+\.md)\s*$", nav, flags=re.M))
    missing = [str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md") if str(p.relative_to(DOCS)) not in listed]
    assert not missing, f"pages missing from mkdocs.yml nav: {missing}"


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    """The site, built once for this module with `mkdocs build --strict` (warnings, e.g. broken links, fail it)."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    site = tmp_path_factory.mktemp("mkdocs") / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site),
                             "--config-file", str(REPO / "mkdocs.yml")], cwd=REPO, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]
    return site


def test_mkdocs_build_is_strict_clean(built_site):
    assert (built_site / "lessons" / "03-attention" / "index.html").is_file()


# docs/hooks/source_pages.py: each gptscratch/ file the docs link to becomes a page of the site.
SOURCE_PAGE = Path("source", "gptscratch", "model", "attention.py", "index.html")
HREF = re.compile(r'href="([^"#]*)(#[^"]*)?"')


def test_linked_source_file_is_a_page_of_the_built_site(built_site):
    html = (built_site / SOURCE_PAGE).read_text(encoding="utf-8")
    source = (REPO / "gptscratch" / "model" / "attention.py").read_text(encoding="utf-8")
    assert "def causal_mask(" in source  # the line looked for below (highlighted, so split into spans)
    assert re.search(r">def</span>(?:\s|<[^>]*>)*causal_mask<", html)
    last_line = len(source.splitlines())
    assert f'id="__codelineno-0-{last_line}"' in html  # the whole file, numbered
    assert f'id="__codelineno-0-{last_line + 1}"' not in html
    assert "exactly as it was when this site was built" in html


def test_built_pages_link_to_the_source_pages_not_outside_the_site(built_site):
    lesson = built_site / "lessons" / "03-attention" / "index.html"
    targets = {(lesson.parent / href).resolve() for href, _ in HREF.findall(lesson.read_text(encoding="utf-8"))}
    assert (built_site / SOURCE_PAGE).parent.resolve() in targets
    # With site_url set, MkDocs writes 404.html's links from the site's root (/gptscratch/...) and each page's
    # canonical link as the full address: both are read from the built site's root.
    site_url = re.search(r"^site_url:\s*(\S+)", (REPO / "mkdocs.yml").read_text(encoding="utf-8"), flags=re.M).group(1)
    site_path = urlsplit(site_url).path
    escaping, dead = [], []
    for page in built_site.rglob("*.html"):
        for href, _ in HREF.findall(page.read_text(encoding="utf-8")):
            base = page.parent
            for prefix in (site_url, site_path):
                if href.startswith(prefix):
                    href, base = href[len(prefix):], built_site
                    break
            if "gptscratch/" in href and "source/gptscratch/" not in href and not re.match(r"^[a-z]+:", href):
                escaping.append(f"{page.relative_to(built_site)} → {href}")
            if "source/gptscratch/" in href and not (base / href / "index.html").is_file():
                dead.append(f"{page.relative_to(built_site)} → {href}")
    assert not escaping, "links leaving the site for gptscratch/:\n" + "\n".join(escaping)
    assert not dead, "links to missing source pages:\n" + "\n".join(dead)


def test_source_links_keep_code_blocks_and_map_anchors_to_lines():
    pytest.importorskip("mkdocs")
    from types import SimpleNamespace

    from mkdocs.config import load_config
    from mkdocs.structure.files import File, get_files

    config = load_config(str(REPO / "mkdocs.yml"))  # loads the hook as MkDocs does; events run through it
    files = config.plugins.on_files(get_files(config), config=config)
    assert "source/gptscratch/model/attention.py.md" in files.src_uris
    page = SimpleNamespace(file=File("lessons/03-attention.md", config.docs_dir, config.site_dir, True))
    lines = (REPO / "gptscratch" / "model" / "attention.py").read_text(encoding="utf-8").splitlines()
    mask_line = next(i for i, line in enumerate(lines, 1) if line.startswith("def causal_mask("))
    class_line = next(i for i, line in enumerate(lines, 1) if line.startswith("class CausalSelfAttention"))
    forward_line = next(i for i, line in enumerate(lines, 1) if i > class_line and "def forward(" in line)
    markdown = ("[a](../../gptscratch/model/attention.py#causal_mask) [b](../../gptscratch/model/attention.py#L7) "
                "[c](../../gptscratch/model/attention.py#CausalSelfAttention.forward) "
                "[d](../../gptscratch/model/attention.py#no_such_name) [e](02-positions.md)\n\n"
                "```markdown\n[f](../../gptscratch/model/attention.py)\n```\n")
    out = config.plugins.on_page_markdown(markdown, page=page, config=config, files=files)
    target = "../source/gptscratch/model/attention.py.md"
    assert f"[a]({target}#__codelineno-0-{mask_line})" in out
    assert f"[b]({target}#__codelineno-0-7)" in out
    assert f"[c]({target}#__codelineno-0-{forward_line})" in out
    assert f"[d]({target})" in out and "[e](02-positions.md)" in out
    assert "[f](../../gptscratch/model/attention.py)" in out  # inside a code block: shown as written


# docs/hooks/mermaid_local.py: the diagrams are drawn by a copy of Mermaid served from the site, never a CDN.
MERMAID_SCRIPT = re.compile(r'<script src="([^"]*mermaid\.min\.js)"></script>')
MATERIAL_SCRIPT = re.compile(r'<script src="[^"]*assets/javascripts/bundle\.[0-9a-f]+\.min\.js"></script>')
DIAGRAM = re.compile(r'<pre class="mermaid">')
CDN = re.compile(r"unpkg\.com|jsdelivr\.net|cdnjs\.|esm\.sh|mermaid@\d", re.IGNORECASE)


def _mermaid_hook():
    import importlib.util

    spec = importlib.util.spec_from_file_location("mermaid_local", DOCS / "hooks" / "mermaid_local.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_built_pages_load_mermaid_from_the_site_itself(built_site):
    import hashlib

    diagram_pages = []
    for page in sorted(built_site.rglob("*.html")):
        html = page.read_text(encoding="utf-8")
        where = page.relative_to(built_site)
        assert not CDN.search(html), f"{where} refers to a CDN: {CDN.search(html).group(0)}"
        if not DIAGRAM.search(html):
            continue
        diagram_pages.append(where)
        script, material = MERMAID_SCRIPT.search(html), MATERIAL_SCRIPT.search(html)
        assert script and material, f"{where}: a diagram but no local Mermaid script (or no Material bundle)"
        assert script.start() < material.start(), f"{where}: Mermaid must load before Material looks for it"
        local = (page.parent / script.group(1)).resolve()
        assert local.is_file() and local.is_relative_to(built_site.resolve()), f"{where}: {script.group(1)} missing"
        assert hashlib.sha256(local.read_bytes()).hexdigest() == _mermaid_hook().SHA256
    lessons = {p.parts[1] for p in diagram_pages if p.parts[0] == "lessons"}
    expected = {p.stem for p in (DOCS / "lessons").glob("[0-9][0-9]*-*.md")}
    assert lessons == expected and len(expected) == 16, f"every lesson has a diagram; pages with one: {diagram_pages}"


@pytest.mark.slow
@pytest.mark.skipif(chromium_path() is None, reason="needs a headless Chromium (Debian: apt-get install chromium)")
def test_diagrams_render_with_the_network_cut(built_site, tmp_path):
    """Open a lesson in headless Chromium, served from localhost, with every other address unreachable.

    Material replaces a `<pre class="mermaid">` by a `<div class="mermaid">` only after `mermaid.render` has
    returned the SVG (which it puts in a closed shadow root, invisible to --dump-dom); when Mermaid cannot be
    loaded the `<pre>` stays, showing the diagram's source text. Both are checked, and that the page fetched
    the local copy."""
    import functools
    import http.server
    import threading

    requested = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format, *args):
            requested.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(built_site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page = "lessons/02-positions/"
        source = (built_site / page / "index.html").read_text(encoding="utf-8")
        diagrams = len(DIAGRAM.findall(source))
        assert diagrams >= 1
        result = subprocess.run(
            [chromium_path(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
             "--proxy-server=127.0.0.1:9",  # any address but localhost (never proxied) is unreachable
             "--virtual-time-budget=20000", "--dump-dom", f"http://127.0.0.1:{server.server_port}/{page}"],
            check=False, capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
    dom = result.stdout
    assert result.returncode == 0 and "</html>" in dom, result.stderr[-2000:]
    assert any(path.endswith("/mermaid/mermaid.min.js") for path in requested), requested
    assert "flowchart TB" not in dom, "the diagram's source text is still on the page: Mermaid did not draw it"
    assert dom.count('<div class="mermaid">') == diagrams


# Code links: a link from any page of docs/lessons/ (the lessons, the index, the reading order, the glossary, the
# exercises) into gptscratch/ names the exact function or class it explains (`file.py#name`, `file.py#Class.method`),
# which docs/hooks/source_pages.py turns into a link to that line on the built site.
SOURCE_LINK = re.compile(r"\]\(((?:\.\./)+gptscratch/[^)\s#]+\.py)(?:#([^)\s]*))?\)")
LESSONS_FOLDER_PAGES = sorted(LESSONS.glob("*.md"))
# Links to a whole package, where no single definition fits: (page, target) pairs, kept short. Each target is a
# package __init__.py with no def or class of its own, only the overview docstring the sentence points at.
MODULE_LEVEL_LINKS = {
    ("08-backpropagation.md", "../../gptscratch/manual/__init__.py"),       # the package's overview docstring
    ("13-interpretability.md", "../../gptscratch/interpret/__init__.py"),   # the package, then each module
    ("exercises.md", "../../gptscratch/manual/__init__.py"),                # "the backward passes of manual/"
    ("exercises.md", "../../gptscratch/learn/__init__.py"),                 # "the files live in learn/"
}


def _definition_line(path: Path, anchor: str) -> int | None:
    """The line of `def name` / `class name` at the top level of `path` (`Class.method`: inside that class)."""
    import ast

    scope: list = ast.parse(path.read_text(encoding="utf-8")).body
    node = None
    for part in anchor.split("."):
        node = next((n for n in scope if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                     and n.name == part), None)
        if node is None:
            return None
        scope = node.body
    return node.lineno


def _source_pages_hook():
    """docs/hooks/source_pages.py, loaded as MkDocs loads it; None where mkdocs is not installed."""
    import importlib.util

    if importlib.util.find_spec("mkdocs") is None:
        return None
    spec = importlib.util.spec_from_file_location("source_pages", DOCS / "hooks" / "source_pages.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    return hook


def test_lesson_code_links_name_a_function_or_class():
    assert {p.name for p in LESSON_PAGES} < {p.name for p in LESSONS_FOLDER_PAGES}
    unanchored, unresolved, misplaced = [], [], []
    hook = _source_pages_hook()
    for lesson in LESSONS_FOLDER_PAGES:
        text = re.sub(r"```.*?```", "", lesson.read_text(encoding="utf-8"), flags=re.S)
        for target, anchor in SOURCE_LINK.findall(text):
            where = f"{lesson.name} → {target}{'#' + anchor if anchor else ''}"
            path = (lesson.parent / target).resolve()
            if not anchor:
                if (lesson.name, target) not in MODULE_LEVEL_LINKS:
                    unanchored.append(where)
                continue
            line = _definition_line(path, anchor)
            if line is None:
                unresolved.append(where)
            elif hook is not None and hook._line_anchor(path, anchor) != f"#__codelineno-0-{line}":
                # the site's hook takes the first `def name` anywhere in the file: a same-named method earlier
                # in the file would send the reader to the wrong place
                misplaced.append(f"{where}: the site would open {hook._line_anchor(path, anchor)!r}, not line {line}")
    assert not unanchored, "links to a whole file; name the function (file.py#name):\n" + "\n".join(unanchored)
    assert not unresolved, "anchors that name no def/class of the file:\n" + "\n".join(unresolved)
    assert not misplaced, "\n".join(misplaced)
    used = {(p.name, t) for p in LESSONS_FOLDER_PAGES for t, a in SOURCE_LINK.findall(p.read_text(encoding="utf-8"))
            if not a}
    assert MODULE_LEVEL_LINKS <= used, f"stale MODULE_LEVEL_LINKS entries: {MODULE_LEVEL_LINKS - used}"
