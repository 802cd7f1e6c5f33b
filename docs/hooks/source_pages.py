"""MkDocs hook: the lessons' links into gptscratch/ open the linked source file on the built site.

Why: the docs link to the code they explain with relative paths such as `../../gptscratch/model/attention.py`.
Those work on GitHub and in a clone, but MkDocs only serves files under docs/, and no repository URL is known
to rewrite them to. So, at build time:

- `on_files` scans every documentation page for links that resolve into <repo>/gptscratch/ and adds one
  generated page per linked file, `source/gptscratch/<path>.py.md` (title, one sentence, the whole file in a
  fenced block with line numbers), plus `source/gptscratch/<dir>/index.md` listing the .py files of a linked
  folder. The pages are built from the files as they are at build time, so the site cannot drift from the code.
- `on_page_markdown` rewrites those links to the generated pages (a path relative to the page, which MkDocs
  then validates like any other link). `file.py#name` goes to the line of `def name` / `class name`
  (`#Class.method` also works), `file.py#L12` to line 12; other anchors are dropped.

Generated pages are NOT_IN_NAV: reachable from the lessons, absent from the navigation, no warnings.
Cost: one regex pass over the docs and one read per linked file; imports only the standard library and mkdocs.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.structure.files import File, Files, InclusionLevel

SOURCE_ROOT = "gptscratch"  # the folder, next to mkdocs.yml, whose files the docs may link to
PAGES_PREFIX = "source"  # generated pages live at source/gptscratch/... in the site
FENCED = re.compile(r"^[ \t]*(`{3,}|~{3,}).*?^[ \t]*\1\s*$", re.M | re.S)  # code blocks: their text is not a link
LINK = re.compile(r"(\]\()([^)\s]+)(\))")
LANGUAGES = {".py": "python", ".toml": "toml", ".json": "json", ".yml": "yaml", ".yaml": "yaml", ".md": "markdown"}

_targets: dict[Path, str] = {}  # absolute path of a linked file or folder → src_uri of its generated page


def _source_target(page_file: File, target: str, root: Path) -> tuple[Path, str] | None:
    """(the file or folder under `root` a link points at, its anchor), or None when the link goes elsewhere."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith(("#", "/")) or not page_file.abs_src_path:
        return None
    path, _, anchor = target.partition("#")
    resolved = (Path(page_file.abs_src_path).parent / path).resolve()
    if not resolved.is_relative_to(root) or not resolved.exists() or "__pycache__" in resolved.parts:
        return None
    if resolved.is_file() and resolved.suffix not in LANGUAGES:  # binary or unknown: left for MkDocs to report
        return None
    return resolved, anchor


def _page_uri(path: Path, repo: Path) -> str:
    relative = path.relative_to(repo).as_posix()
    return f"{PAGES_PREFIX}/{relative}/index.md" if path.is_dir() else f"{PAGES_PREFIX}/{relative}.md"


def _file_page(path: Path, repo: Path) -> str:
    text = path.read_text(encoding="utf-8")
    fence = "`" * max([3, *(len(run) + 1 for run in re.findall(r"`{3,}", text))])
    name = path.relative_to(repo).as_posix()
    language = LANGUAGES.get(path.suffix, "text")
    return (f"# `{name}`\n\nThis is `{name}` exactly as it was when this site was built "
            f"({len(text.splitlines())} lines; click a line number to link to it).\n\n"
            f'{fence}{language} linenums="1"\n{text}{"" if text.endswith(chr(10)) else chr(10)}{fence}\n')


def _folder_page(path: Path, repo: Path) -> str:
    name = path.relative_to(repo).as_posix()
    items = [f"- [`{f.name}`]({f.name}.md)" for f in sorted(path.glob("*.py"))]
    return (f"# `{name}/`\n\nThe Python files of `{name}/` as they were when this site was built.\n\n"
            + "\n".join(items) + "\n")


def on_files(files: Files, *, config) -> Files:
    """Add a generated page for every file (and folder) under gptscratch/ that a documentation page links to."""
    repo = Path(config.config_file_path).resolve().parent
    root = repo / SOURCE_ROOT
    _targets.clear()
    for page_file in files.documentation_pages():
        for target in LINK.findall(FENCED.sub("", page_file.content_string)):
            found = _source_target(page_file, target[1], root)
            if found:
                _targets[found[0]] = _page_uri(found[0], repo)
    for path in [p for p in _targets if p.is_dir()]:  # a folder's page links each of its .py files
        _targets.update({f: _page_uri(f, repo) for f in path.glob("*.py")})
    for path, uri in sorted(_targets.items()):
        content = _folder_page(path, repo) if path.is_dir() else _file_page(path, repo)
        files.append(File.generated(config, uri, content=content, inclusion=InclusionLevel.NOT_IN_NAV))
    return files


def _line_anchor(path: Path, anchor: str) -> str:
    """`#L12` → line 12; `#name` or `#Class.method` → the line defining it; anything else → no anchor."""
    if re.fullmatch(r"L\d+", anchor):
        return f"#__codelineno-0-{anchor[1:]}"
    lines, start = path.read_text(encoding="utf-8").splitlines(), 0
    for part in anchor.split("."):
        pattern = re.compile(rf"^\s*(?:async\s+)?(?:def|class)\s+{re.escape(part)}\b")
        start = next((i for i in range(start, len(lines)) if pattern.match(lines[i])), None)
        if start is None:
            return ""
    return f"#__codelineno-0-{start + 1}"


def on_page_markdown(markdown: str, *, page, config, files) -> str:
    """Point links into gptscratch/ at the generated pages, leaving code blocks untouched."""
    root = Path(config.config_file_path).resolve().parent / SOURCE_ROOT
    here = posixpath.dirname(page.file.src_uri)

    def rewrite(match: re.Match) -> str:
        found = _source_target(page.file, match.group(2), root)
        if not found or found[0] not in _targets:
            return match.group(0)
        path, anchor = found
        anchor = _line_anchor(path, anchor) if anchor and path.is_file() else ""
        return f"{match.group(1)}{posixpath.relpath(_targets[path], here or '.')}{anchor}{match.group(3)}"

    pieces, last = [], 0
    for block in FENCED.finditer(markdown):
        pieces += [LINK.sub(rewrite, markdown[last:block.start()]), block.group(0)]
        last = block.end()
    return "".join(pieces) + LINK.sub(rewrite, markdown[last:])
