"""The interactive HTML views (`interpret attention|logit-lens|induction-heads --html`, `train report --html`).

What is checked, in a real headless Chromium (Debian's chromium driven by Playwright):
- the page loads with the network cut: it requests nothing but itself, and logs no console error;
- hovering and clicking change what is shown;
- the numbers shown equal the `--json` output of the same command.
Without Chromium or Playwright the browser tests skip, except when GPTSCRATCH_REQUIRE_BROWSER=1 (as .ci/run sets),
where they fail instead: in CI the views must be tested, not skipped.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from helpers import chromium_path, run_cli_in_process


@pytest.fixture(scope="module")
def browser():
    required = os.environ.get("GPTSCRATCH_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            pytest.fail("GPTSCRATCH_REQUIRE_BROWSER=1 but playwright is not installed (pip install playwright)")
        pytest.skip("needs playwright (pip install playwright) and a Chromium")
    path = chromium_path()
    if path is None:
        if required:
            pytest.fail("GPTSCRATCH_REQUIRE_BROWSER=1 but no chromium is installed (apt-get install chromium)")
        pytest.skip("needs a headless Chromium (Debian: apt-get install chromium)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        except Exception as error:  # noqa: BLE001 - e.g. a browser on PATH that this Playwright cannot drive
            if required:
                raise
            pytest.skip(f"{path} could not be started by Playwright: {' '.join(str(error).split())[:200]}")
        yield chromium
        chromium.close()


class Opened:
    """A page opened offline: every request other than the file itself is recorded and aborted."""

    def __init__(self, browser, html: Path):
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.requests, self.errors = [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        url = html.resolve().as_uri()

        def route(request_route):
            if request_route.request.url != url:
                self.requests.append(request_route.request.url)
                request_route.abort()
            else:
                request_route.continue_()

        self.context.route("**/*", route)
        self.context.set_offline(True)
        self.page.goto(url)
        self.page.wait_for_selector("#view section")

    def texts(self, selector: str) -> list[str]:
        return self.page.locator(selector).all_inner_texts()

    def check_clean(self):
        assert self.requests == [] and self.errors == [], (self.requests, self.errors)
        self.context.close()


def close_to(shown: str, value: float, digits: int = 3, stored: int | None = None) -> bool:
    """`shown` is `value` written with `digits` decimals (after the page stored it rounded to `stored` decimals)."""
    slack = 0.5 * 10 ** -stored if stored is not None else 0.0
    return abs(float(shown.rstrip("%")) - value) <= 0.5 * 10 ** -digits + slack + 1e-9


@pytest.fixture
def byte_checkpoint(tmp_path, tiny_model):
    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer

    return save_checkpoint(tmp_path / "byte", tiny_model(vocab_size=257, context_length=64),
                           get_tokenizer("byte").spec())


def cli(capsys, monkeypatch, *args) -> str:
    code, out, err = run_cli_in_process(capsys, monkeypatch, *args)
    assert code == 0, err
    return out


def visible(token: str) -> str:
    """As the pages write a token (common.js, GS.visible): whitespace made visible."""
    return token.replace(" ", "·").replace("\n", "↵").replace("\t", "⇥")


def embedded(html: Path) -> dict:
    match = re.search(r'<script type="application/json" id="gptscratch-data">(.*?)</script>',
                      html.read_text(encoding="utf-8"))
    return json.loads(match.group(1))


# --- without a browser --------------------------------------------------------------------------------------------

def test_page_is_self_contained_and_data_cannot_end_its_script_element():
    from gptscratch.views import render_page

    hostile = {"token_strings": ["</script><script>alert(1)</script>", "<!--", "&amp;"], "x": float("nan"),
               "path": Path("/runs/a")}                  # what --json prints, the page embeds: a path as text
    html = render_page("report", "a <b>title</b>", {"summary": {}, "series": {}, "extra": hostile})
    assert html.count("</script>") == html.count("<script")            # only our own elements close
    assert "<b>title</b>" not in html and "&lt;b&gt;title" in html      # the title is escaped
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing loaded from anywhere
    assert "default-src 'none'" in html                                 # and the browser is told so
    data = json.loads(re.search(r'id="gptscratch-data">(.*?)</script>', html).group(1))
    assert data["extra"]["token_strings"][0] == hostile["token_strings"][0] and data["extra"]["x"] is None
    assert data["extra"]["path"] == str(Path("/runs/a"))
    with pytest.raises(ValueError, match="unknown view"):
        render_page("nope", "t", {})


def test_bad_html_path_is_refused_before_any_work(tmp_path, capsys, monkeypatch, byte_checkpoint):
    for target, message in [(tmp_path / "x.png", "ending in .html"), (tmp_path / "missing" / "x.html", "does not exist"),
                            (tmp_path, "is a folder")]:
        code, out, err = run_cli_in_process(capsys, monkeypatch, "interpret", "attention", str(byte_checkpoint),
                                            "--text", "abc", "--html", str(target))
        assert code == 2 and message in err and out == "" and "checkpoint:" not in err, err
    assert not (tmp_path / "x.png").exists()


def test_embedded_data_is_the_json_output(tmp_path, capsys, monkeypatch, byte_checkpoint):
    page = tmp_path / "a.html"
    out = json.loads(cli(capsys, monkeypatch, "interpret", "attention", str(byte_checkpoint), "--text", "hello hello",
                         "--json", "--html", str(page)))
    data = embedded(page)
    assert data["heads"] == out["heads"] and data["token_strings"] == out["token_strings"]
    assert len(data["patterns"]) == 2 and [len(r) for r in data["patterns"][0][0]] == list(range(1, 13))


# --- in the browser -----------------------------------------------------------------------------------------------

def test_attention_view(browser, tmp_path, capsys, monkeypatch, byte_checkpoint):
    page_file, text = tmp_path / "attention.html", "abcabc abcabc"
    cli(capsys, monkeypatch, "interpret", "attention", str(byte_checkpoint), "--text", text, "--html", str(page_file))
    full = json.loads(cli(capsys, monkeypatch, "interpret", "attention", str(byte_checkpoint), "--text", text, "--json"))
    heads = {h: json.loads(cli(capsys, monkeypatch, "interpret", "attention", str(byte_checkpoint), "--text", text,
                               "--layer", "1", "--head", str(h), "--json"))["pattern"] for h in (0, 2)}
    view = Opened(browser, page_file)
    for head in full["heads"]:            # every detection score and entropy, as --json gives them
        cells = view.page.locator(f'#heads tr[data-name="{head["name"]}"] td.num').all_inner_texts()
        assert len(cells) == len(head["scores"]) + 1
        assert all(close_to(c, v) for c, v in zip(cells, [*head["scores"].values(), head["normalized_entropy"]]))
    view.page.select_option("#layer", "1")
    for h, pattern in heads.items():
        view.page.select_option("#head", str(h))
        for q in (3, 9):
            view.page.hover(f'#tokens .token[data-pos="{q}"]')
            weights = view.texts("#readout-table td.weight")
            assert len(weights) == q + 1 and all(close_to(w, v, stored=4) for w, v in zip(weights, pattern[q][:q + 1]))
            assert f"L1H{h}" in view.page.inner_text("#readout-title")
            masked = view.page.locator("#tokens .token.masked").count()
            assert masked == len(full["tokens"]) - q - 1
    view.page.click('#tokens .token[data-pos="5"]')              # click keeps the query while the mouse moves
    view.page.hover('#tokens .token[data-pos="2"]')
    assert len(view.texts("#readout-table td.weight")) == 6
    view.page.click('#heads tr[data-name="L0H3"]')               # a row of the heads table picks that head
    assert view.page.input_value("#layer") == "0" and view.page.input_value("#head") == "3"
    view.check_clean()


def test_logit_lens_view(browser, tmp_path, capsys, monkeypatch, byte_checkpoint):
    page_file, args = tmp_path / "lens.html", ("interpret", "logit-lens", str(byte_checkpoint), "--text", "the cat sat",
                                               "--target", "!", "-k", "3")
    cli(capsys, monkeypatch, *args, "--html", str(page_file))
    lens = json.loads(cli(capsys, monkeypatch, *args, "--json"))
    view = Opened(browser, page_file)
    grid = view.page.locator("#lens-grid tbody tr")
    assert grid.count() == len(lens["labels"])
    for s in range(len(lens["labels"])):           # every cell's top-1 guess and its probability of the answer
        cells = grid.nth(s).locator("td")
        for p in (1, 5, len(lens["tokens"]) - 1):
            assert cells.nth(p).inner_text() == visible(lens["top_strings"][s][p][0])[:8]
            value = cells.nth(p).get_attribute("data-value")
            assert (value == "") if lens["target_prob"][s][p] is None else close_to(value, lens["target_prob"][s][p], 6)
    for s, p in ((0, 4), (len(lens["labels"]) - 1, 7)):
        grid.nth(s).locator("td").nth(p).click()
        rows = view.page.locator("#topk-table tbody tr")
        assert f"(position {p})" in view.page.inner_text("#topk-title")
        for layer in range(len(lens["labels"])):
            shown = rows.nth(layer).locator("td[data-rank]").all_inner_texts()
            expected = [f"{visible(t)} {100 * pr:.1f}%" for t, pr in zip(lens["top_strings"][layer][p],
                                                                           lens["top_probs"][layer][p])]
            assert [" ".join(x.split()) for x in shown] == [" ".join(x.split()) for x in expected]
        assert rows.nth(s).get_attribute("class") == "selected"
    assert view.page.is_visible("#topk")
    view.page.uncheck("#show-topk")                 # the top-k table is a toggle
    assert not view.page.is_visible("#topk")
    view.check_clean()


def test_induction_view(browser, tmp_path, capsys, monkeypatch, byte_checkpoint):
    page_file, args = tmp_path / "ind.html", ("interpret", "induction-heads", str(byte_checkpoint), "--length", "8",
                                              "--batch", "2")
    cli(capsys, monkeypatch, *args, "--html", str(page_file))
    report = json.loads(cli(capsys, monkeypatch, *args, "--json"))
    view = Opened(browser, page_file)
    for metric in ("scores", "previous_token_scores"):
        view.page.select_option("#metric", metric)
        cells = view.page.locator("#score-grid tbody tr")
        for layer, row in enumerate(report[metric]):
            assert view.page.locator("#score-grid tbody tr").nth(layer).locator("td").all_inner_texts() == \
                [f"{v:.3f}" for v in row]
        assert cells.count() == len(report[metric])
    view.page.hover('#score-grid td[data-row="1"][data-col="2"]')
    detail = view.page.inner_text("#detail-scores")
    assert f"induction score {report['scores'][1][2]:.3f}" in detail
    assert f"previous-token score {report['previous_token_scores'][1][2]:.3f}" in detail
    for name in ("loss on copy 1", "in-context loss drop"):
        key = {"loss on copy 1": "loss_first_copy", "in-context loss drop": "loss_drop"}[name]
        assert close_to(view.page.inner_text(f'#losses [data-name="{name}"]'), report[key])
    assert view.texts("#ranked tbody td:nth-child(2)") == [h["name"] for h in report["ranked"]]
    assert view.page.locator("canvas.pattern").count() == min(3, len(report["ranked"]))
    view.check_clean()


def test_run_report_view(browser, tmp_path, capsys, monkeypatch, tiny_model):
    from gptscratch.checkpoint import save_checkpoint
    from gptscratch.tokenizers import get_tokenizer

    run = tmp_path / "run"
    save_checkpoint(run / "latest", tiny_model(vocab_size=257), get_tokenizer("byte").spec(),
                    training={"step": 30, "tokens": 3000, "val_loss": 2.5, "elapsed": 12.5, "data": "gone-dataset"})
    records = [{"step": s, "loss": 5.0 - 0.1 * s, "lr": 1e-3 * min(1, s / 5), "tokens_per_s": 900.0 + s}
               for s in range(1, 31)]
    records += [{"step": 10, "val_loss": 3.5, "sample": "first words"}, {"step": 30, "val_loss": 2.5, "sample": "last"}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + '{"step": 31, "lo')
    report = json.loads(cli(capsys, monkeypatch, "train", "report", str(run), "--json"))
    assert not (run / "report.html").exists()                    # --json alone writes no page
    assert [p[1] for p in report["series"]["val loss"]] == [3.5, 2.5] and len(report["series"]["lr"]) == 30
    assert report["dataset"]["name"] == "gone-dataset" and "not in this machine's cache" in report["dataset"]["note"]
    cli(capsys, monkeypatch, "train", "report", str(run))
    view = Opened(browser, run / "report.html")
    assert view.page.inner_text('#summary [data-name="steps"]') == "30"
    assert view.page.inner_text('#summary [data-name="best val loss"]') == "2.5000"
    assert view.page.inner_text("#sample-text") == "last"
    view.page.fill("#sample-step", "0")                          # slide back to the first evaluation
    assert view.page.inner_text("#sample-text") == "first words" and "step 10" in view.page.inner_text("#sample-label")
    points = view.page.locator("#lr-chart polyline").get_attribute("points").split()
    assert len(points) == 30
    assert view.page.inner_text('#config tr[data-key="model.n_layer"] td') == "2"
    view.page.hover("#loss-chart")
    assert "train loss" in view.page.text_content("#loss-chart .readout")
    view.check_clean()
