// The attention view (`gptscratch interpret attention ... --html`).
// Data: the command's --json (tokens, token_strings, heads: one profile per head) plus `layers` (the layers whose
// patterns are stored), `n_head` and `patterns[i][h][q]` = the weights of query q over keys 0..q in layer
// layers[i], head h (row q has q + 1 numbers: the causal mask hides the rest).
// Hover a token: it becomes the query; the tokens light up by how much the chosen head attends to them, and the
// "every head" table shows all heads of the layer at once. Click a token to keep it; click a head to choose it.
"use strict";

(function () {
  const d = GS.data, T = d.token_strings.length;
  const state = {layerIndex: d.layers.indexOf(d.selected.layer), head: d.selected.head, query: T - 1};
  if (state.layerIndex < 0) state.layerIndex = 0;
  const layer = () => d.layers[state.layerIndex];
  const weights = (h, q) => d.patterns[state.layerIndex][h][q];       // q + 1 numbers
  const detectors = Object.keys(d.heads.length ? d.heads[0].scores : {});

  // --- controls ---------------------------------------------------------------------------------------------
  const layerSelect = GS.select("layer", "layer", d.layers.map((l, i) => [i, String(l)]), state.layerIndex,
    (v) => { state.layerIndex = Number(v); draw(); });
  const headSelect = GS.select("head", "head", [...Array(d.n_head).keys()].map((h) => [h, String(h)]), state.head,
    (v) => { state.head = Number(v); draw(); });
  const title = GS.el("span", {id: "current-head", class: "hint"});
  GS.section("Where does each token look?", "Hover a token to make it the query; click to keep it. Darker = " +
    "more attention from the query (scaled to its largest weight; the table gives the exact numbers). Tokens after the query are masked (causal attention).",
    GS.el("div", {class: "controls"}, layerSelect, headSelect, title));
  const strip = GS.el("div", {class: "tokens", id: "tokens"}, d.token_strings.map((text, i) =>
    GS.el("span", {class: "token", dataset: {pos: i}, title: `position ${i}, id ${d.tokens[i]}`,
      onmouseenter: () => { if (!state.locked) { state.query = i; drawQuery(); } },
      onclick: () => { state.locked = !(state.locked && state.query === i); state.query = i; drawQuery(); }},
    GS.visible(text))));
  const readout = GS.el("div", {id: "readout", class: "panel"});
  document.getElementById("view").lastChild.append(strip, GS.el("p"), readout);

  const allHeads = GS.section("Every head of the layer, from the query", "One row per head: its weights over the " +
    "keys for the current query. Click a row to choose that head.");
  const patternBox = GS.section("The chosen head's whole pattern", "Rows are queries, columns keys; hover a cell " +
    "for its weight, click it to make that row the query.");
  const table = GS.el("table", {id: "heads"});
  GS.section("Heads and what they do", "Detection scores as TransformerLens computes them (Σ A⊙D / Σ A) and the " +
    "kind gptscratch assigns; the same numbers as the command's --json. Click a row to look at that head.", table);

  // --- drawing ----------------------------------------------------------------------------------------------
  function drawTokens() {
    const w = weights(state.head, state.query), top = Math.max(...w);
    strip.querySelectorAll(".token").forEach((node, k) => {
      const v = k <= state.query ? w[k] : null;
      node.style.background = GS.color(v, 0, top);        // scaled to the largest weight: faint rows stay visible
      node.style.color = GS.ink(v, 0, top);
      node.classList.toggle("query", k === state.query);
      node.classList.toggle("masked", k > state.query);
      node.dataset.weight = v === null ? "" : v;
    });
    title.textContent = `L${layer()}H${state.head}` + (state.locked ? " (query kept: click it again to free)" : "");
    const rows = w.map((v, k) => GS.el("tr", {dataset: {key: k}}, GS.el("td", {class: "num"}, k),
      GS.el("td", {}, GS.visible(d.token_strings[k])), GS.el("td", {class: "num weight"}, GS.fmt(v, 3)),
      GS.el("td", {}, GS.el("div", {style: {width: `${Math.round(120 * v)}px`, height: "8px",
        background: "var(--accent)"}}))));
    readout.replaceChildren(GS.el("div", {class: "hint", id: "readout-title"},
      `L${layer()}H${state.head}: query "${GS.visible(d.token_strings[state.query])}" at position ${state.query} ` +
      "attends to"), GS.el("table", {id: "readout-table"}, GS.el("thead", {}, GS.el("tr", {}, GS.el("th", {}, "key"),
      GS.el("th", {}, "token"), GS.el("th", {class: "num"}, "weight"), GS.el("th", {}, ""))), GS.el("tbody", {}, rows)));
  }

  function drawAllHeads() {
    const rows = [...Array(d.n_head).keys()].map((h) => weights(h, state.query));
    const labels = rows.map((_, h) => `L${layer()}H${h}`);
    const cols = d.token_strings.slice(0, state.query + 1).map(GS.visible);
    const map = GS.heatmap(rows, labels, cols, {id: "all-heads", onClick: (h) => { state.head = h; draw(); }});
    map.querySelector(`th[data-row="${state.head}"]`).classList.add("active");
    allHeads.querySelector(".scroll")?.remove();
    allHeads.append(GS.el("div", {class: "scroll"}, map));
  }

  function drawPattern() {
    const rows = [...Array(T).keys()].map((q) => weights(state.head, q));
    const labels = d.token_strings.map((t, i) => `${GS.visible(t)} ${i}`);
    const map = GS.heatmap(rows, labels, d.token_strings.map(GS.visible), {id: "pattern",
      onClick: (q) => { state.query = q; state.locked = true; drawQuery(); }});
    patternBox.querySelector(".scroll")?.remove();
    patternBox.append(GS.el("div", {class: "scroll"}, map));
  }

  function drawTable() {
    table.replaceChildren(GS.el("thead", {}, GS.el("tr", {}, GS.el("th", {}, "head"), GS.el("th", {}, "kind"),
      detectors.map((name) => GS.el("th", {class: "num"}, name.replace(/_/g, " "))),
      GS.el("th", {class: "num"}, "entropy (0-1)"))),
    GS.el("tbody", {}, d.heads.map((p) => GS.el("tr", {class: "clickable" +
      (p.head === state.head && p.layer === layer() ? " selected" : ""), dataset: {name: p.name},
      onclick: () => { state.layerIndex = Math.max(0, d.layers.indexOf(p.layer)); state.head = p.head; draw(); }},
    GS.el("td", {}, p.name), GS.el("td", {}, `${p.kind} (${GS.fmt(p.confidence, 2)})`),
    detectors.map((name) => GS.el("td", {class: "num", dataset: {detector: name}}, GS.fmt(p.scores[name], 3))),
    GS.el("td", {class: "num"}, GS.fmt(p.normalized_entropy, 3))))));
  }

  // A new query redraws what depends on it; the whole pattern (T × T cells) is redrawn only for a new head.
  function drawQuery() {
    drawTokens(); drawAllHeads();
    const map = document.getElementById("pattern");
    GS.activate(map, state.query, state.query);
    map.querySelectorAll("tbody th.active").forEach((n) => n.classList.remove("active"));
    map.querySelector(`tbody th[data-row="${state.query}"]`).classList.add("active");
  }

  function draw() {
    document.getElementById("layer").value = String(state.layerIndex);
    document.getElementById("head").value = String(state.head);
    drawPattern(); drawTable(); drawQuery();
  }
  draw();
})();
