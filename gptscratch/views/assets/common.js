// What every gptscratch view shares: reading the embedded data, building elements, colours, number formats,
// heatmap tables and line charts. Plain JavaScript (ES2017), no library: this file is what runs.
"use strict";

const GS = {};

// The command's --json dictionary, embedded by gptscratch/views/page.py.
GS.data = JSON.parse(document.getElementById("gptscratch-data").textContent);

// el("td", {class: "num", title: "..."}, "text", child, ...) → an element. Properties starting with "on" are
// event listeners; "dataset" is an object of data-* attributes.
GS.el = function (tag, attrs, ...children) {
  const node = document.createElementNS(tag === "svg" || GS.el.svgTags.has(tag) ? "http://www.w3.org/2000/svg"
    : "http://www.w3.org/1999/xhtml", tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key === "style" && typeof value === "object") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
};
GS.el.svgTags = new Set(["g", "path", "line", "text", "circle", "rect", "polyline", "title"]);

// Numbers as the command line prints them: fixed decimals; null (NaN, unknown) → "".
GS.fmt = (x, digits = 3) => (x === null || x === undefined || Number.isNaN(x)) ? "" : Number(x).toFixed(digits);
GS.pct = (x) => (x === null || x === undefined) ? "" : (100 * x).toFixed(1) + "%";
GS.compact = (x) => x === null || x === undefined ? "" : Math.abs(x) >= 1e6 ? (x / 1e6).toFixed(2) + "M"
  : Math.abs(x) >= 1e3 ? (x / 1e3).toFixed(1) + "k" : String(x);

// A token as text you can see: a space is "·", a newline "↵", a tab "⇥" (gptscratch's token labels already
// write a space as ␣ and a newline as \n; this covers any other text a page shows, e.g. a demo text's menu).
GS.visible = (text) => String(text).replace(/ /g, "·").replace(/\n/g, "↵").replace(/\t/g, "⇥");

// Sequential colour for v in [lo, hi]: white → dark blue (matplotlib's "Blues" ends). null → transparent.
GS.color = function (v, lo = 0, hi = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "transparent";
  const t = Math.max(0, Math.min(1, (v - lo) / ((hi - lo) || 1)));
  const mix = (a, b) => Math.round(a + (b - a) * t);
  return `rgb(${mix(255, 8)},${mix(255, 48)},${mix(255, 107)})`;
};
// Text colour that stays readable on GS.color's background; "" (the page's own colour) where there is none.
GS.ink = function (v, lo = 0, hi = 1) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  return (v - lo) / ((hi - lo) || 1) > 0.55 ? "#fff" : "#111";
};

// <select> of [value, label] pairs; onChange gets the chosen value as a string.
GS.select = function (id, label, options, value, onChange) {
  const select = GS.el("select", {id, onchange: (e) => onChange(e.target.value)},
    options.map(([v, text]) => GS.el("option", {value: v}, text)));
  select.value = String(value);
  return GS.el("label", {}, label + " ", select);
};

// A heatmap as a table: rows × cols of values, coloured in [lo, hi]. Each cell carries data-row, data-col and
// data-value (the exact number) and a title; opts.text(v, r, c) writes text into cells, opts.onHover / onClick
// get (r, c), opts.cellClass(r, c) adds a class.
GS.heatmap = function (values, rowLabels, colLabels, opts = {}) {
  const lo = opts.lo ?? 0, hi = opts.hi ?? 1;
  const head = GS.el("tr", {}, GS.el("th", {}, opts.corner || ""),
    colLabels.map((label, c) => GS.el("th", {dataset: {col: c}, title: opts.colTitle ? opts.colTitle(c) : null,
      onclick: opts.onColumn ? () => opts.onColumn(c) : null}, label)));
  const rows = values.map((row, r) => GS.el("tr", {}, GS.el("th", {dataset: {row: r}}, rowLabels[r]),
    colLabels.map((_, c) => {
      const v = row[c] === undefined ? null : row[c];
      const classes = [opts.text ? "text" : "", v === null ? "blank" : "", opts.cellClass ? opts.cellClass(r, c) : ""];
      return GS.el("td", {
        class: classes.filter(Boolean).join(" ") || null,
        dataset: {row: r, col: c, value: v === null ? "" : v},
        title: `${rowLabels[r]} × ${colLabels[c]}: ${v === null ? "—" : GS.fmt(v, opts.digits ?? 3)}`,
        style: v === null ? {} : {background: GS.color(v, lo, hi), color: GS.ink(v, lo, hi)},
        onmouseenter: opts.onHover ? () => opts.onHover(r, c) : null,
        onclick: opts.onClick ? () => opts.onClick(r, c) : null,
      }, opts.text ? opts.text(v, r, c) : "");
    })));
  return GS.el("table", {class: "heatmap", id: opts.id}, GS.el("thead", {}, head), GS.el("tbody", {}, rows));
};

// Mark one cell (and its row/column headers) of a GS.heatmap table as active.
GS.activate = function (table, r, c) {
  table.querySelectorAll(".active").forEach((n) => n.classList.remove("active"));
  const cell = table.querySelector(`td[data-row="${r}"][data-col="${c}"]`);
  if (cell) cell.classList.add("active");
  const colHead = table.querySelector(`thead th[data-col="${c}"]`);
  if (colHead) colHead.classList.add("active");
};

// A line chart (SVG): series = [{name, points: [[x, y], ...], color, dots}], with axes, a legend and a readout of
// the nearest point under the mouse. opts: {xLabel, yLabel, log (y axis), width, height}.
GS.lineChart = function (series, opts = {}) {
  const W = opts.width || 900, H = opts.height || 280, m = {l: 58, r: 16, t: 14, b: 36};
  const all = series.flatMap((s) => s.points).filter((p) => p[1] !== null && Number.isFinite(p[1]));
  const svg = GS.el("svg", {class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", id: opts.id});
  if (!all.length) { svg.append(GS.el("text", {x: 20, y: 30}, "no data")); return svg; }
  const ty = (y) => opts.log ? Math.log10(y) : y;
  // Bounds by a loop: Math.min(...points) passes every point as an argument, which fails for long runs.
  let [x0, x1, y0, y1] = [Infinity, -Infinity, Infinity, -Infinity];
  for (const [x, y] of all) {
    x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, ty(y)); y1 = Math.max(y1, ty(y));
  }
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) { y0 -= 0.5; y1 += 0.5; }
  const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
  const X = (x) => m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r);
  const Y = (y) => H - m.b - (ty(y) - y0) / (y1 - y0) * (H - m.t - m.b);
  for (let i = 0; i <= 4; i++) {            // grid and tick labels: 5 evenly spaced values on each axis
    const yv = y0 + (y1 - y0) * i / 4, xv = x0 + (x1 - x0) * i / 4, yy = H - m.b - i / 4 * (H - m.t - m.b);
    const raw = opts.log ? Math.pow(10, yv) : yv;
    const label = raw !== 0 && Math.abs(raw) < 0.01 ? raw.toExponential(1) : Number(raw.toPrecision(3));
    svg.append(GS.el("line", {class: "grid", x1: m.l, x2: W - m.r, y1: yy, y2: yy}),
      GS.el("text", {x: m.l - 6, y: yy + 4, "text-anchor": "end"}, label),
      GS.el("text", {x: X(xv), y: H - m.b + 14, "text-anchor": "middle"}, Math.round(xv)));
  }
  svg.append(GS.el("text", {x: (W + m.l) / 2, y: H - 4, "text-anchor": "middle"}, opts.xLabel || ""),
    GS.el("text", {x: 12, y: (H - m.b + m.t) / 2, transform: `rotate(-90 12 ${(H - m.b + m.t) / 2})`,
      "text-anchor": "middle"}, opts.yLabel || ""));
  series.forEach((s, i) => {
    const pts = s.points.filter((p) => p[1] !== null && Number.isFinite(p[1]));
    svg.append(GS.el("polyline", {fill: "none", stroke: s.color, "stroke-width": 1.5,
      points: pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(" ")}));
    if (s.dots) pts.forEach((p) => svg.append(GS.el("circle", {cx: X(p[0]), cy: Y(p[1]), r: 2.5, fill: s.color})));
    svg.append(GS.el("rect", {x: W - m.r - 150, y: m.t + 4 + 16 * i, width: 10, height: 10, fill: s.color}),
      GS.el("text", {x: W - m.r - 135, y: m.t + 13 + 16 * i}, s.name));
  });
  const readout = GS.el("text", {x: m.l + 8, y: m.t + 12, class: "readout"}, "");
  const marker = GS.el("line", {y1: m.t, y2: H - m.b, stroke: "var(--muted)", "stroke-dasharray": "3 3",
    visibility: "hidden"});
  svg.append(marker, readout);
  svg.addEventListener("mousemove", (event) => {
    const box = svg.getBoundingClientRect(), x = x0 + ((event.clientX - box.left) * W / box.width - m.l)
      / (W - m.l - m.r) * (x1 - x0);
    const parts = series.map((s) => {
      if (!s.points.length) return null;
      const near = s.points.reduce((a, b) => Math.abs(b[0] - x) < Math.abs(a[0] - x) ? b : a);
      return `${s.name} ${GS.fmt(near[1], opts.digits ?? 4)} @ ${near[0]}`;
    }).filter(Boolean);
    readout.textContent = parts.join("   ");
    marker.setAttribute("x1", X(x)); marker.setAttribute("x2", X(x)); marker.setAttribute("visibility", "visible");
  });
  return svg;
};

// Append a titled section to the page.
GS.section = function (title, hint, ...children) {
  const node = GS.el("section", {}, GS.el("h2", {}, title), hint ? GS.el("p", {class: "hint"}, hint) : null,
    ...children);
  document.getElementById("view").append(node);
  return node;
};
