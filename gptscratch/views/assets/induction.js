// The induction-heads view (`gptscratch interpret induction-heads ... --html`).
// Data: the command's --json (length, batch, loss_first_copy, loss_second_copy, loss_drop, scores and
// previous_token_scores [layer][head], ranked heads with their feeders) plus `offset` (1 when an end-of-text token
// leads the sequence) and `patterns`: for the best heads, the attention pattern on the first repeated sequence.
// An induction head attends from each token of the second copy to the token AFTER that token's earlier occurrence:
// in its pattern that is a stripe parallel to the diagonal, `length - 1` positions below it.
"use strict";

(function () {
  const d = GS.data, nLayer = d.scores.length, nHead = nLayer ? d.scores[0].length : 0;
  const byName = Object.fromEntries(d.ranked.map((h, i) => [h.name, {...h, rank: i + 1}]));
  const state = {metric: "scores", layer: d.ranked.length ? d.ranked[0].layer : 0,
    head: d.ranked.length ? d.ranked[0].head : 0};

  GS.section("Does the model copy from its context?", `Repeated random tokens: ${d.batch} sequences of ` +
    `${d.offset ? "[end-of-text] " : ""}S S with |S| = ${d.length}. On the second copy the next token is ` +
    "predictable only by looking back, so the loss drops when induction heads work.",
  GS.el("div", {class: "cards", id: "losses"}, [["loss on copy 1", d.loss_first_copy],
    ["loss on copy 2", d.loss_second_copy], ["in-context loss drop", d.loss_drop]].map(([name, v]) =>
    GS.el("div", {class: "card"}, GS.el("div", {class: "value", dataset: {name}}, GS.fmt(v, 3)),
      GS.el("div", {class: "name"}, name)))));

  const metric = GS.select("metric", "show", [["scores", "induction score"],
    ["previous_token_scores", "previous-token score"]], state.metric, (v) => { state.metric = v; draw(); });
  const gridBox = GS.section("Every head", "Induction score: the attention from each second-copy token to the token " +
    "after its first occurrence, averaged. Hover a head for details.", GS.el("div", {class: "controls"}, metric));
  const detail = GS.el("div", {id: "head-detail", class: "panel"});
  gridBox.after(GS.el("section", {}, detail));
  const patternBox = GS.section("The best heads' patterns", "Attention on the first sequence (rows: queries, " +
    "columns: keys). The bright stripe below the diagonal is induction: copy 2 looking at copy 1, one token on.");

  function drawGrid() {
    const values = d[state.metric];
    const map = GS.heatmap(values, values.map((_, l) => `layer ${l}`), [...Array(nHead).keys()].map((h) => `H${h}`),
      {id: "score-grid", text: (v) => GS.fmt(v, 3), corner: "layer \\ head",
        onHover: (l, h) => { state.layer = l; state.head = h; drawDetail(); GS.activate(map, l, h); }});
    GS.activate(map, state.layer, state.head);
    gridBox.querySelector(".scroll")?.remove();
    gridBox.append(GS.el("div", {class: "scroll"}, map));
  }

  function drawDetail() {
    const name = `L${state.layer}H${state.head}`, ranked = byName[name];
    const lines = [GS.el("div", {}, GS.el("b", {}, name), ranked ? ` — rank ${ranked.rank} of ${d.ranked.length}` : "")];
    lines.push(GS.el("div", {id: "detail-scores"}, `induction score ${GS.fmt(d.scores[state.layer][state.head], 3)} · ` +
      `previous-token score ${GS.fmt(d.previous_token_scores[state.layer][state.head], 3)}`));
    if (ranked && ranked.feeders.length) {
      lines.push(GS.el("div", {}, "fed by (zero-ablating the feeder leaves this induction score):"),
        GS.el("ul", {}, ranked.feeders.map((f) => GS.el("li", {}, `${f.name}: previous-token score ` +
          `${GS.fmt(f.previous_token_score, 3)}; ablated → ${GS.fmt(f.score_after_ablation, 3)}`))));
    }
    detail.replaceChildren(...lines);
  }

  function drawPatterns() {
    // Canvas, one pixel block per weight: a 100 × 100 pattern is 10,000 cells, too many for a table.
    patternBox.querySelectorAll(".pattern-card").forEach((n) => n.remove());
    for (const item of d.patterns) {
      const T = item.pattern.length, scale = Math.max(2, Math.floor(300 / T));
      const canvas = GS.el("canvas", {class: "pattern", width: T * scale, height: T * scale,
        dataset: {name: item.name}});
      const ctx = canvas.getContext("2d");
      item.pattern.forEach((row, q) => row.forEach((v, k) => {
        ctx.fillStyle = GS.color(v); ctx.fillRect(k * scale, q * scale, scale, scale);
      }));
      const readout = GS.el("div", {class: "hint"}, "hover the pattern");
      canvas.addEventListener("mousemove", (event) => {
        const box = canvas.getBoundingClientRect();
        const at = (offset, size) => Math.min(T - 1, Math.max(0, Math.floor(offset / size * T)));   // edge → T − 1
        const q = at(event.clientY - box.top, box.height), k = at(event.clientX - box.left, box.width);
        const v = k <= q ? item.pattern[q][k] : null;
        readout.textContent = `query ${q} → key ${k}: ${v === null ? "masked" : GS.fmt(v, 3)}`;
      });
      patternBox.append(GS.el("div", {class: "pattern-card", style: {display: "inline-block", marginRight: "1rem"}},
        GS.el("div", {}, `${item.name} (induction ${GS.fmt(d.scores[item.layer][item.head], 3)})`), canvas, readout));
    }
  }

  const ranking = GS.el("table", {id: "ranked"});
  GS.section("Ranking", null, ranking);
  ranking.append(GS.el("thead", {}, GS.el("tr", {}, ["rank", "head", "induction", "previous-token", "fed by"].map((t) =>
    GS.el("th", {}, t)))), GS.el("tbody", {}, d.ranked.map((h, i) => GS.el("tr", {dataset: {name: h.name}},
    GS.el("td", {class: "num"}, i + 1), GS.el("td", {}, h.name), GS.el("td", {class: "num"}, GS.fmt(h.score, 3)),
    GS.el("td", {class: "num"}, GS.fmt(h.previous_token_score, 3)),
    GS.el("td", {}, h.feeders.map((f) => f.name).join(", ") || "-")))));

  function draw() { drawGrid(); drawDetail(); }
  draw(); drawPatterns();
})();
