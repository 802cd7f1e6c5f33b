// The logit-lens view (`gptscratch interpret logit-lens ... --html`).
// Data: `items`, a list of the command's --json results (one per text; --demo gives several): labels (one per
// layer read), token_strings, targets (the correct next token at each position, or null), target_strings, top_ids / top_strings /
// top_probs [layer][position][k], target_prob and target_rank [layer][position], position (the one detailed).
// The grid shows each layer's top-1 guess at each position, coloured by the probability it gives the correct next
// token (green outline: the top-1 guess is correct). Click a cell or a column to see every layer's top-k there.
"use strict";

(function () {
  const items = GS.data.items;
  const state = {item: 0, position: items[0].position, layer: items[0].labels.length - 1};

  const controls = GS.el("div", {class: "controls"});
  if (items.length > 1) {
    controls.append(GS.select("text", "text", items.map((it, i) => [i, it.token_strings.join("").slice(0, 60)]), 0,
      (v) => { state.item = Number(v); state.position = items[state.item].position; draw(); }));
  }
  const toggle = GS.el("input", {type: "checkbox", id: "show-topk", checked: "checked",
    onchange: () => { topk.hidden = !toggle.checked; }});
  controls.append(GS.el("label", {}, toggle, " show each layer's top-k at the chosen position"),
    GS.el("span", {}, "P(correct next token): 0 ", GS.el("span", {class: "legend"}), " 1"));
  const gridBox = GS.section("What would each layer predict?", "Rows: the residual stream read after each layer " +
    "(final norm applied, then the unembedding). Columns: positions; each cell is the top-1 next-token guess.",
    controls);
  const topk = GS.el("div", {id: "topk", class: "panel"});
  GS.section("Top-k by layer", null, topk);

  function drawGrid(it) {
    const T = it.token_strings.length;
    const text = (v, s, p) => Array.from(GS.visible(it.top_strings[s][p][0])).slice(0, 8).join("");  // whole characters
    const map = GS.heatmap(it.target_prob, it.labels, it.token_strings.map(GS.visible), {id: "lens-grid", text,
      cellClass: (s, p) => it.targets[p] !== null && it.top_ids[s][p][0] === it.targets[p] ? "correct" : "",
      onClick: (s, p) => { state.position = p; state.layer = s; draw(); },
      onColumn: (p) => { state.position = p; draw(); },
      colTitle: (p) => `position ${p}; correct next: ${it.targets[p] === null ? "unknown" : GS.visible(it.target_strings[p])}`});
    GS.activate(map, state.layer, state.position);
    gridBox.querySelector(".scroll")?.remove();
    gridBox.append(GS.el("div", {class: "scroll"}, map));
    if (T === 0) gridBox.append("no tokens");
  }

  function drawTopk(it) {
    const p = state.position, correct = it.targets[p];
    const next = correct === null ? "unknown (give --target)" : `"${GS.visible(it.target_strings[p])}"`;
    const k = it.top_ids[0][p].length;
    const rows = it.labels.map((label, s) => GS.el("tr", {dataset: {layer: s}, class: s === state.layer ? "selected" : null},
      GS.el("td", {}, label),
      [...Array(k).keys()].map((j) => GS.el("td", {class: "num", dataset: {rank: j},
        style: it.top_ids[s][p][j] === correct ? {color: "var(--good)", fontWeight: 600} : {}},
      `${GS.visible(it.top_strings[s][p][j])} ${GS.pct(it.top_probs[s][p][j])}`)),
      GS.el("td", {class: "num"}, it.target_rank[s][p] ?? ""), GS.el("td", {class: "num"}, GS.pct(it.target_prob[s][p]))));
    topk.replaceChildren(GS.el("div", {class: "hint", id: "topk-title"},
      `after "${GS.visible(it.token_strings[p])}" (position ${p}); correct next token: ${next}`),
    GS.el("table", {id: "topk-table"}, GS.el("thead", {}, GS.el("tr", {}, GS.el("th", {}, "layer"),
      [...Array(k).keys()].map((j) => GS.el("th", {class: "num"}, `#${j + 1}`)),
      GS.el("th", {class: "num"}, "correct rank"), GS.el("th", {class: "num"}, "correct prob"))),
    GS.el("tbody", {}, rows)));
  }

  function draw() {
    const it = items[state.item];
    drawGrid(it); drawTopk(it);
  }
  draw();
})();
