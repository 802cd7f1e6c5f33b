"""MkDocs hook: the diagrams are drawn by a copy of Mermaid served from the built site, not from a CDN.

Why: Material for MkDocs draws a ```mermaid block with Mermaid, which it loads from unpkg.com the first time a
page with a diagram opens — unless a global `mermaid` already exists (its bundle: `typeof mermaid == "undefined"
? load unpkg.com/mermaid@11 : use it`). Offline, or behind a firewall, the CDN load fails and the lessons'
diagrams show as raw text. So this hook gives every page that has a diagram its own `<script>` for a local copy,
placed before Material's bundle: by the time Material looks, `mermaid` is defined and nothing is fetched.

Where the copy comes from: the npm package `mermaid` (the same major version Material asks unpkg for), version
and checksum pinned below. It is 3.5 MB of minified JavaScript, so it is fetched at build time rather than
committed: `make docs` (or `python docs/hooks/mermaid_local.py`) runs `npm pack` once into build/, checks the
sha256, and keeps `dist/mermaid.min.js` and the licence there. At build time the hook:

- `on_config`: refuses to build without that file, or with a file whose checksum is not the pinned one (one
  line naming the command that fetches it) — a site that silently fell back to the CDN is what this prevents;
- `on_files`: adds the file (and Mermaid's licence) to the site as assets/javascripts/mermaid/;
- `on_post_page`: on a page whose HTML has a Mermaid diagram, inserts the script right before Material's bundle.

tests/test_docs.py checks the built pages (no CDN reference, the script present and first) and, where chromium is
installed, opens a lesson headless with the network cut and finds the diagram drawn as SVG.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "11.17.2"  # Material 9.x loads mermaid@11 from unpkg; keep the same major version
SHA256 = "581ed7d74bd9048d0e3a91363927d72ef22942d7722546b27f7cc29e35390eb8"  # of package/dist/mermaid.min.js
REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "docs-assets" / f"mermaid-{VERSION}"  # ignored by git (build/)
BUNDLE = CACHE / "mermaid.min.js"
LICENSE = CACHE / "LICENSE"
SITE_DIR = "assets/javascripts/mermaid"  # where the copy lives in the built site
SITE_BUNDLE = f"{SITE_DIR}/mermaid.min.js"
FETCH = "make docs-vendor"  # or: python docs/hooks/mermaid_local.py
DIAGRAM = re.compile(r'<(?:pre|div)\b[^>]*\bclass="[^"]*\bmermaid\b')
MATERIAL_BUNDLE = re.compile(r'<script src="[^"]*assets/javascripts/bundle\.[0-9a-f]+\.min\.js"></script>')


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def bundle_problem() -> str | None:
    """Why the pinned bundle cannot be used (None when it can)."""
    if not BUNDLE.is_file():
        return f"Mermaid {VERSION} is not in {BUNDLE.relative_to(REPO)}"
    if _sha256(BUNDLE) != SHA256:
        return f"{BUNDLE.relative_to(REPO)} is not Mermaid {VERSION} (sha256 differs); delete it"
    return None


def fetch() -> Path:
    """Fetch the pinned mermaid package with `npm pack` (npm checks the registry's integrity hash), keep its
    dist/mermaid.min.js and LICENSE in build/, and check the file's sha256. Does nothing when already there."""
    if bundle_problem() is None:
        return BUNDLE
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("error: npm is needed once to fetch Mermaid for the docs site; install Node.js "
                         "(which brings npm), then run `make docs-vendor` again")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE.parent) as scratch:
        done = subprocess.run([npm, "pack", f"mermaid@{VERSION}", "--pack-destination", scratch, "--silent"],
                              check=False, capture_output=True, text=True)
        archives = list(Path(scratch).glob("mermaid-*.tgz"))
        if done.returncode != 0 or len(archives) != 1:
            raise SystemExit(f"error: `npm pack mermaid@{VERSION}` failed: {done.stderr.strip()[-500:]}; "
                             "check the connection to the npm registry and run `make docs-vendor` again")
        with tarfile.open(archives[0]) as archive:
            members = {"package/dist/mermaid.min.js": BUNDLE, "package/LICENSE": LICENSE}
            for member, target in members.items():
                data = archive.extractfile(member).read()
                if target is BUNDLE and hashlib.sha256(data).hexdigest() != SHA256:
                    raise SystemExit(f"error: mermaid@{VERSION}'s dist/mermaid.min.js does not have the pinned "
                                     f"sha256 {SHA256}; not using it")
                partial = target.with_suffix(target.suffix + ".partial")
                partial.write_bytes(data)
                partial.replace(target)
    return BUNDLE


# --- the MkDocs events ------------------------------------------------------------------------------------


def on_config(config):
    problem = bundle_problem()
    if problem is not None:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{problem}: run `{FETCH}` (fetches it from the npm registry once) — without it the "
                          "site's diagrams would load Mermaid from a CDN")
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for source, name in ((BUNDLE, "mermaid.min.js"), (LICENSE, "LICENSE")):
        files.append(File.generated(config, f"{SITE_DIR}/{name}", abs_src_path=str(source)))
    return files


def on_post_page(output: str, page, config) -> str:
    if not DIAGRAM.search(output):
        return output
    bundle = MATERIAL_BUNDLE.search(output)
    if bundle is None:
        from mkdocs.exceptions import PluginError

        raise PluginError(f"{page.file.src_uri}: Material's bundle script not found, so Mermaid cannot be put in "
                          "front of it; the theme changed: update docs/hooks/mermaid_local.py")
    source = posixpath.relpath(SITE_BUNDLE, posixpath.dirname(page.file.dest_uri) or ".")
    script = f'<script src="{source}"></script>\n    '
    return output[:bundle.start()] + script + output[bundle.start():]


if __name__ == "__main__":
    print(fetch().relative_to(REPO), file=sys.stderr)
