"""Interactive views: one self-contained HTML page per analysis, opened in any browser with no network.

    page.py       the page: a Jinja2 template with the styles, the scripts and the data inlined (no CDN, no build)
    assets/       the plain-JavaScript views and their stylesheet (common.js holds what every view shares)

A view is drawn in the browser from the same dictionary that the command's `--json` prints, embedded in the page
as JSON, so the numbers on the page are the numbers of the command line. The views:

    attention     hover a token to see where each head attends from it; pick the layer and head; the heads'
                  detection scores and kinds (`gptscratch interpret attention ... --html`)
    logit-lens    the top-1 prediction after every layer at every position, coloured by the probability of the
                  correct next token; click a position for each layer's top-k (`interpret logit-lens ... --html`)
    induction     the induction score of every head, its previous-token score and feeders, and the attention
                  pattern of the best heads on repeated random tokens (`interpret induction-heads ... --html`)
    report        a training run's report card: loss and learning-rate curves, samples over time, the config
                  and the dataset, from metrics.jsonl (`gptscratch train report RUN --html`)

Library code: it returns text or writes a file; it never prints.
"""

from .page import VIEWS, causal_rows, render_page, write_page

__all__ = ["VIEWS", "causal_rows", "render_page", "write_page"]
