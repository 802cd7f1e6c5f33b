"""Screenshots of the interactive pages (`--html`), for the docs: registered with benchmarks/docs_assets.py.

Each page is made by the real command line (`python -m gptscratch ... --html`) from the same runs the other
pictures read (the quick preset after QUICK_STEPS steps, the toy induction circuit), opened in headless Chromium
through Playwright with the network cut, hovered or clicked as a reader would, and photographed. The figures
returned are the page sizes, so the docs can say what a page weighs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from docs_assets import Context, generator
from docs_figures import LENS_TARGET, LENS_TEXT, quick_run, toy_induction

WIDTH = 1000            # CSS pixels; one device pixel each, so a screenshot stays well under 120 KB


def gptscratch(ctx: Context, *args: str) -> str:
    """Run the command line as a user would (in this script's GPTSCRATCH_HOME, one thread); → its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GPTSCRATCH_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, "-m", "gptscratch", *args], capture_output=True, text=True, env=env,
                          cwd=ctx.work)
    if done.returncode != 0:
        raise RuntimeError(f"gptscratch {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return done.stdout


def photograph(page_file: Path, image: Path, act=None, height: int = 720) -> None:
    """Open `page_file` offline, let `act(page)` hover or click, and save the top `height` pixels as `image`."""
    from playwright.sync_api import sync_playwright

    chromium = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if chromium is None:
        raise RuntimeError("the screenshots need a Chromium (Debian: apt-get install chromium) and playwright")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": WIDTH, "height": height}, color_scheme="light")
        context.set_offline(True)
        page = context.new_page()
        page.goto(page_file.resolve().as_uri())
        page.wait_for_selector("#view section")
        if act is not None:
            act(page)
        page.screenshot(path=str(image), clip={"x": 0, "y": 0, "width": WIDTH, "height": height})
        browser.close()


def _kb(path: Path) -> float:
    return round(path.stat().st_size / 1024, 1)


@generator("views", "view-attention.png", "view-logit-lens.png", "view-induction.png", "view-report.png")
def views(ctx: Context) -> dict:
    """The four interactive pages: attention, logit lens, induction heads, run report (lessons 10 and 13)."""
    run = quick_run(ctx).run_dir
    pages = ctx.work / "pages"
    pages.mkdir(exist_ok=True)
    text = ["--text", LENS_TEXT]

    gptscratch(ctx, "interpret", "attention", str(run), *text, "--html", str(pages / "attention.html"))
    heads = json.loads(gptscratch(ctx, "interpret", "attention", str(run), *text, "--json"))["heads"]
    best = max(heads, key=lambda h: h["scores"]["previous_token"])

    def attention(page):
        page.click(f'#heads tr[data-name="{best["name"]}"]')
        page.hover('#tokens .token[data-pos="12"]')
    photograph(pages / "attention.html", ctx.image("view-attention.png"), attention, 760)

    gptscratch(ctx, "interpret", "logit-lens", str(run), *text, "--target", LENS_TARGET, "-k", "5",
               "--html", str(pages / "lens.html"))
    photograph(pages / "lens.html", ctx.image("view-logit-lens.png"),
               lambda page: page.click('#lens-grid td[data-row="2"][data-col="30"]'), 560)

    from gptscratch.interpret.toy import save_induction_model

    toy = save_induction_model(ctx.work / "toy", toy_induction(ctx))
    gptscratch(ctx, "interpret", "induction-heads", str(toy), "--length", "10", "--html", str(pages / "ind.html"))
    photograph(pages / "ind.html", ctx.image("view-induction.png"), None, 760)

    gptscratch(ctx, "train", "report", str(run), "--html", str(pages / "report.html"))
    photograph(pages / "report.html", ctx.image("view-report.png"),
               lambda page: page.hover("#loss-chart", position={"x": 500, "y": 120}), 640)
    return {"view_attention_kb": _kb(pages / "attention.html"), "view_logit_lens_kb": _kb(pages / "lens.html"),
            "view_induction_kb": _kb(pages / "ind.html"), "view_report_kb": _kb(pages / "report.html"),
            "view_attention_head": best["name"]}
