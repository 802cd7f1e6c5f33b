"""The landing page and the project's addresses: README.md is a short page that works on GitHub and on PyPI.

PyPI shows README.md without the repository around it, so its links and its picture are absolute URLs. They are
derived from the addresses named once in pyproject.toml's [project.urls] (and, for the site, mkdocs.yml's
`site_url` / `repo_url`); these tests check that all of them agree and that each link lands on a file of this
repository. The docs site is published by .github/workflows/pages.yml when a release is tagged.
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")
LESSONS = sorted((REPO / "docs" / "lessons").glob("[0-9][0-9]*-*.md"))
LINK = re.compile(r"(!?)\[[^\]]*\]\(([^)\s]+)\)")


def project_urls() -> dict[str, str]:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["urls"]


def mkdocs_config() -> dict:
    class Loader(yaml.SafeLoader):  # mkdocs.yml names Python objects (!!python/name:...): keep them as text
        pass

    Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)
    return yaml.load((REPO / "mkdocs.yml").read_text(encoding="utf-8"), Loader=Loader)


def raw_url(repository: str, path: str) -> str:
    """A file of the default branch as GitHub serves it to image tags (PyPI's page included)."""
    owner, name = repository.rstrip("/").split("/")[-2:]
    return f"https://raw.githubusercontent.com/{owner}/{name}/main/{path}"


def file_behind(url: str, urls: dict[str, str]) -> Path | None:
    """The repository file an absolute link stands for: a docs page, a file on GitHub (None: another site)."""
    url = url.split("#")[0]
    site, repository = urls["Documentation"].rstrip("/") + "/", urls["Repository"].rstrip("/")
    for prefix in (repository + "/blob/main/", raw_url(repository, "")):
        if url.startswith(prefix):
            return REPO / url[len(prefix):]
    if url.rstrip("/") == repository:
        return REPO
    if url.startswith(site):
        page = url[len(site):]
        if page and not page.endswith("/"):
            return REPO / "docs" / page  # a file the site serves as it is (an image)
        folder = REPO / "docs" / page.rstrip("/")
        return next((p for p in (folder.with_suffix(".md"), folder / "index.md") if p.is_file()),
                    folder.with_suffix(".md"))
    return None


def test_the_addresses_agree():
    urls, config = project_urls(), mkdocs_config()
    repository, site = urls["Repository"], urls["Documentation"]
    assert set(urls) == {"Homepage", "Documentation", "Repository", "Issues", "Changelog"}
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", repository)
    assert urls["Homepage"] == repository
    assert urls["Issues"] == repository + "/issues"
    assert urls["Changelog"] == repository + "/blob/main/CHANGELOG.md" and (REPO / "CHANGELOG.md").is_file()
    assert config["repo_url"] == repository
    assert config["site_url"] == site and site.startswith("https://") and site.endswith("/")


def test_readme_links_are_absolute_and_land_on_files_of_this_repository():
    urls = project_urls()
    links = [target for _, target in LINK.findall(README)]
    assert len(links) >= 30
    relative = [t for t in links if not re.match(r"^https://", t) and not t.startswith("#")]
    assert not relative, f"relative links break on PyPI: {relative}"
    missing = [t for t in links if (path := file_behind(t, urls)) is not None and not path.exists()]
    assert not missing, f"links to nothing: {missing}"
    outside = [t for t in links if file_behind(t, urls) is None]
    assert not outside, f"links to neither the docs site nor the repository: {outside}"
    assert urls["Changelog"] in links and urls["Documentation"] in links


def test_readme_picture_is_the_committed_svg_at_an_address_pypi_can_show():
    images = [target for bang, target in LINK.findall(README) if bang]
    assert images == [raw_url(project_urls()["Repository"], "docs/images/architecture.svg")]
    svg = REPO / "docs" / "images" / "architecture.svg"
    root = ET.parse(svg).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg" and root.get("viewBox")
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    for part in ("token embedding", "causal self-attention", "MLP", "n_layer", "logits"):
        assert part in texts
    for name in re.findall(r"model/\w+\.py", texts):  # the files the picture names exist
        assert (REPO / "gptscratch" / name).is_file(), name


def test_readme_is_a_landing_page():
    assert len(README.splitlines()) <= 90, "README.md is one screen or two; the rest belongs on the docs site"
    start = re.search(r"## Start\n+```bash\n(.*?)```", README, flags=re.S).group(1)
    commands = [shlex.split(line, comments=True) for line in start.splitlines()]
    assert commands == [["pip", "install", "gptscratch"], ["gptscratch", "train", "--preset", "quick"],
                        ["gptscratch", "generate", "--preset", "creative", "--prompt", "The "]]
    site = project_urls()["Documentation"]
    for lesson in LESSONS:
        assert f"]({site}lessons/{lesson.stem}/)" in README, f"the learning path table lacks {lesson.name}"
    assert len(LESSONS) == 16


def test_readme_says_how_to_run_the_tests_as_ci_does():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    commands = re.findall(r"^\s*(?:if ! )?(make [\w-]+)", ci, flags=re.M)
    assert {"make test", "make test-slow"} <= set(commands)
    for command in ("make test", "make test-slow"):
        assert f"`{command}`" in README


def test_pages_workflow_builds_strictly_and_deploys_on_tags():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8"))
    trigger = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as true
    assert trigger == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"]["pages"] == "write" and workflow["permissions"]["id-token"] == "write"
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    uses = {step["uses"].split("@")[0] for step in steps if "uses" in step}
    assert {"actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"} <= uses
    runs = "\n".join(step.get("run", "") for step in steps)
    assert re.search(r"^mkdocs build --strict\b", runs, flags=re.M)
    assert 'pip install -e ".[test,docs]"' in runs and "python docs/hooks/mermaid_local.py" in runs
    assert workflow["jobs"]["deploy"]["needs"] == "build"
