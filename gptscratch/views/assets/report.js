// The run report (`gptscratch train report RUN --html`): a training run's report card.
// Data: the command's --json — `summary` (name, steps, tokens, losses, shape, parameters, tokenizer), `series`
// ({"train loss": [[step, value], ...], "val loss": ..., "lr": ..., "tokens/s": ...}), `samples` ([{step,
// val_loss, sample}]), `config` (the checkpoint's config.json: model, training, tokenizer, data) and `dataset`.
"use strict";

(function () {
  const d = GS.data, s = d.summary;
  const cards = [["steps", s.step], ["tokens", GS.compact(s.tokens)], ["last val loss", GS.fmt(s.val_loss, 4)],
    ["best val loss", GS.fmt(s.best_val_loss, 4)], ["parameters", GS.compact(s.parameters)], ["shape", s.shape],
    ["tokenizer", s.tokenizer], ["time", s.elapsed === null || s.elapsed === undefined ? "" : `${GS.fmt(s.elapsed, 0)} s`]];
  GS.section("Summary", `${s.path}`, GS.el("div", {class: "cards", id: "summary"}, cards.map(([name, v]) =>
    GS.el("div", {class: "card"}, GS.el("div", {class: "value", dataset: {name}}, v ?? ""),
      GS.el("div", {class: "name"}, name)))));

  const series = d.series;
  GS.section("Loss", "Cross-entropy in nats per token; the validation loss is measured every eval interval. " +
    "Move the mouse over the chart for values.", GS.lineChart([
    {name: "train loss", points: series["train loss"] || [], color: "#2f6fd6"},
    {name: "val loss", points: series["val loss"] || [], color: "#d62f5b", dots: true}],
  {id: "loss-chart", xLabel: "step", yLabel: "loss (nats/token)"}));
  GS.section("Learning rate", "The schedule: warm-up, then decay.", GS.lineChart([
    {name: "lr", points: series.lr || [], color: "#1a8f3c"}], {id: "lr-chart", xLabel: "step", yLabel: "learning rate",
    height: 180, digits: 6}));
  if ((series["tokens/s"] || []).length) {
    GS.section("Throughput", null, GS.lineChart([{name: "tokens/s", points: series["tokens/s"], color: "#8a5cd6"}],
      {id: "speed-chart", xLabel: "step", yLabel: "tokens/s", height: 180, digits: 0}));
  }

  const samples = d.samples || [];
  if (samples.length) {
    const text = GS.el("pre", {class: "sample", id: "sample-text"});
    const label = GS.el("div", {class: "hint", id: "sample-label"});
    const show = (i) => {
      const it = samples[i];
      label.textContent = `step ${it.step}` + (it.val_loss === null || it.val_loss === undefined ? "" : ` · val loss ${GS.fmt(it.val_loss, 4)}`);
      text.textContent = it.sample;
    };
    const slider = GS.el("input", {type: "range", id: "sample-step", min: 0, max: samples.length - 1,
      value: samples.length - 1, oninput: (e) => show(Number(e.target.value))});
    GS.section("Samples over time", "What the model wrote at each evaluation: slide from the first to the last.",
      GS.el("div", {class: "controls"}, GS.el("label", {}, "evaluation ", slider)), label, text);
    show(samples.length - 1);
  }

  // The config as a flat table of key = value (nested keys joined with dots).
  const flat = [];
  const walk = (prefix, value) => {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(prefix ? `${prefix}.${k}` : k, v);
    } else flat.push([prefix, Array.isArray(value) ? JSON.stringify(value) : String(value)]);
  };
  walk("", d.config || {});
  const table = (id, rows) => GS.el("table", {id}, GS.el("tbody", {}, rows.map(([k, v]) =>
    GS.el("tr", {dataset: {key: k}}, GS.el("th", {}, k), GS.el("td", {}, v)))));
  if (d.dataset) {
    const rows = [];
    for (const [k, v] of Object.entries(d.dataset)) rows.push([k, typeof v === "object" ? JSON.stringify(v) : String(v)]);
    GS.section("Dataset", "What the model was trained on.", table("dataset", rows));
  }
  GS.section("Configuration", "Everything needed to rebuild the run (config.json of its newest checkpoint).",
    table("config", flat));
})();
