// Views: draw the runs into the page (panels, pictures, curves, the run folder list, messages).
// They read the state and call the handlers the controller passes in; they never change the
// state or talk to the server themselves. The setup forms are in forms.js.

import { drawChart, drawHeatmap, formatStep } from "./charts.js";
import { urls } from "./api.js";
import { $, el } from "./dom.js";
import { ImageCache } from "./images.js";
import {
  SLOT_COLOURS, SLOT_NAMES, builtin, chartMetric, chartableMetrics, formatHeadline, frameInfo, heldOut, isLive, metricInfo, modeFacts,
  scopedKey, slotConfig, targetData,
} from "./state.js";

// One run on the page: a colour per layer (Tableau-10 after the run colours); several runs: the run's colour, a dash per layer.
const LAYER_COLOURS = ["#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#bab0ac"];
const LAYER_DASHES = [[], [6, 3], [2, 2], [8, 3, 2, 3], [1, 3], [12, 4]];
// A run's headline over its held-out pixels: dashed, in the run's colour, beside its training pixels' (solid).
const TEST_DASH = [6, 4];

async function loadBitmap(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `HTTP ${r.status}`);
  return createImageBitmap(await r.blob());
}

// The views draw into `root` (the page's document, or a notebook widget's element holding the same ids) and get
// pictures from `urls` through `load` (url -> Promise<ImageBitmap>): the page's server by default.
export class Views {
  constructor(handlers, { root = document, urls: sources = urls, load = loadBitmap } = {}) {
    this.h = handlers;
    this.root = root;
    this.urls = sources;
    this.panels = [];            // per slot: {root, els..., targetUrl}
    this.images = new ImageCache(load);
  }

  $(sel) {
    return $(sel, this.root);
  }

  // -- run panels -------------------------------------------------------------------------------------

  renderPanels(state) {
    const root = this.$("#panels");
    root.dataset.count = state.slots.length;
    while (this.panels.length > state.slots.length) this.panels.pop().root.remove();
    state.slots.forEach((slot, i) => {
      if (!this.panels[i]) {
        this.panels[i] = this.makePanel(i);
        root.append(this.panels[i].root);
      }
      this.updatePanel(state, i);
    });
    this.renderLegend(state);
  }

  makePanel(i) {
    const p = {};
    p.target = el("canvas", { class: "picture target-canvas", width: 1, height: 1 });
    p.prediction = el("canvas", { class: "picture prediction-canvas", width: 1, height: 1 });
    p.title = el("span", { class: "panel-title" });
    p.status = el("span", { class: "badge" });
    p.runId = el("span", { class: "run-id" });
    p.step = el("b", { class: "stat-step" });
    p.sps = el("b", { class: "stat-sps" });
    p.loss = el("b", { class: "stat-loss" });
    p.metricName = el("span", { class: "stat-metric-name" });
    p.metric = el("b", { class: "stat-metric" });
    p.test = el("b", { class: "stat-test" });
    p.testStat = el("span", { class: "stat-held-out", title: "the headline over the pixels held out of training (data.holdout)", hidden: true }, "held out ", p.test);
    p.predCaption = el("figcaption", { class: "pred-caption" });
    p.scrub = el("input", { type: "range", class: "scrub", min: 0, max: 0, value: 0, "aria-label": "scrub through the saved evaluations",
      oninput: (e) => this.h.scrub(i, Number(e.target.value)) });
    p.scrubLabel = el("span", { class: "scrub-label" });
    p.downloads = el("div", { class: "downloads" });
    p.error = el("p", { class: "panel-error" });
    p.batch = el("canvas", { class: "batch-canvas", width: 1, height: 1, hidden: true });
    p.prediction.dataset.slot = i;
    p.pictures = el("div", { class: "pictures" },
      el("figure", {}, p.target, el("figcaption", { text: "target" })),
      el("figure", {}, p.prediction, p.batch, p.predCaption));
    p.root = el("article", { class: "panel", style: `--slot: ${SLOT_COLOURS[i]}`, dataset: { slot: i } },
      el("header", {}, el("span", { class: "swatch" }), p.title, p.status, p.runId),
      p.pictures,
      el("div", { class: "stats" },
        el("span", {}, "step ", p.step), el("span", {}, p.sps, " steps/s"), el("span", {}, "loss ", p.loss), el("span", {}, p.metricName, " ", p.metric), p.testStat),
      el("div", { class: "scrubber" }, p.scrub, p.scrubLabel),
      p.downloads, p.error);
    return p;
  }

  // Redraw slot i after a live message, as much as `applyMessage` says it changed.
  applyChanged(state, i, changed) {
    if (changed.panel) { this.updatePanel(state, i); return; }
    if (changed.stats) this.updateStats(state, i);
    if (changed.scrub) { this.updateScrub(state, i); this.drawPrediction(state, i); }
    if (changed.preview) this.drawPrediction(state, i);
  }

  updatePanel(state, i) {
    this.state = state;
    const slot = state.slots[i];
    const p = this.panels[i];
    const run = slot.runId ? state.runs[slot.runId] : null;
    const s = run?.summary;
    p.title.textContent = `${SLOT_NAMES[i]} · ${slot.preset}${Object.keys(slot.overrides).length ? " (changed)" : ""}`;
    p.status.textContent = s ? s.status : "not started";
    p.status.className = `badge ${s ? s.status : "draft"}`;
    p.runId.textContent = slot.runId ?? "";
    p.runId.title = slot.runId ? `run folder ${slot.runId}` : "";
    const data = targetData(state);
    const [h, w] = s ? [s.height, s.width] : [data.height ?? builtin(state).height, data.width ?? builtin(state).width];
    // Wide pictures stack (target over prediction) when panels share the width; otherwise side by side.
    p.pictures.classList.toggle("wide", w >= 1.6 * h && state.slots.length > 1);
    if (w && h) p.pictures.style.setProperty("--aspect", `${w} / ${h}`);
    this.updateStats(state, i);
    this.updateScrub(state, i);
    p.error.textContent = s?.error ?? "";
    p.downloads.replaceChildren(...(s ? state.meta.downloads
      .map(({ kind, label, at_the_end }) => (s.files[kind] ? el("a", { href: this.urls.download(slot.runId, kind), download: "", text: label })
        : el("span", { class: "unavailable", text: label, title: at_the_end ? "written when training ends" : "written when training reaches it" }))) : []));
    // Target picture: the run's own copy, or what a new run would fit.
    const targetUrl = slot.runId && s ? this.urls.target(slot.runId) : this.urls.targetPreview(data, state.target.kind === "upload" ? state.target.upload : null);
    if (state.target.kind === "upload" && !state.target.upload && !slot.runId) this.blank(p.target, "drop a picture");
    else if (p.targetUrl !== targetUrl) {
      p.targetUrl = targetUrl;
      this.drawUrl(p.target, targetUrl, () => p.targetUrl === targetUrl);
    }
    this.drawPrediction(state, i);
  }

  updateStats(state, i) {
    const p = this.panels[i];
    const run = state.slots[i].runId ? state.runs[state.slots[i].runId] : null;
    const s = run?.summary;
    const cfg = slotConfig(state, state.slots[i]);
    p.step.textContent = `${(s?.step ?? 0).toLocaleString("en")} / ${(s?.steps ?? cfg.schedule.steps).toLocaleString("en")}`;
    p.sps.textContent = s?.status === "running" && s.steps_per_s ? Math.round(s.steps_per_s).toLocaleString("en") : "–";
    p.loss.textContent = s?.loss != null ? s.loss.toPrecision(3) : "–";
    const facts = modeFacts(state, s?.mode ?? cfg.data.mode);
    p.metricName.textContent = facts.label;
    p.metric.textContent = formatHeadline(facts, s?.metric_value);
    p.metric.dataset.value = s?.metric_value ?? "";
    p.testStat.hidden = !heldOut(run);
    p.test.textContent = formatHeadline(facts, s?.test_value);
    p.test.dataset.value = s?.test_value ?? "";
  }

  updateScrub(state, i) {
    const p = this.panels[i];
    const run = state.slots[i].runId ? state.runs[state.slots[i].runId] : null;
    const n = run ? run.frames.length : 0;
    p.scrub.disabled = n < 2;
    p.scrub.max = Math.max(0, n - 1);
    const index = run && !isLive(run) ? run.scrub : Math.max(0, n - 1);
    if (document.activeElement !== p.scrub) p.scrub.value = index;
    if (!run || !n) {
      p.scrubLabel.textContent = "no evaluations yet";
      return;
    }
    const facts = modeFacts(state, run.summary?.mode ?? state.target.mode);
    const { step, value, test } = frameInfo(run, index, facts);
    const live = isLive(run) && run.summary?.status === "running";
    const heldOutText = heldOut(run) && test !== null ? ` · held out ${formatHeadline(facts, test)}` : "";
    p.scrubLabel.textContent = `${live ? "live · " : ""}evaluation ${index + 1} of ${n} · step ${formatStep(step)} · ${formatHeadline(facts, value)}${heldOutText}`;
  }

  // The prediction: the live preview while following a running run, else a saved frame.
  drawPrediction(state, i) {
    const p = this.panels[i];
    const id = state.slots[i].runId;
    const run = id ? state.runs[id] : null;
    if (!run || !run.summary) {
      p.predCaption.textContent = "prediction";
      this.blank(p.prediction, "press Start");
      p.predUrl = null;
      return;
    }
    const live = isLive(run);
    if (live && run.preview && run.summary.status === "running") {
      p.predCaption.textContent = `prediction · live at step ${formatStep(run.preview.step)}`;
      p.predUrl = null;
      this.drawPreview(p.prediction, run.preview);
      return;
    }
    if (!run.frames.length) {
      if (!run.preview) this.blank(p.prediction, run.summary.status === "running" ? "starting…" : "press Start");
      return;
    }
    const index = live ? run.frames.length - 1 : run.scrub;
    const step = run.frames[index];
    p.predCaption.textContent = `prediction · step ${formatStep(step)}`;
    const url = this.urls.frame(id, step);
    if (p.predUrl !== url) {
      p.predUrl = url;
      this.drawUrl(p.prediction, url, () => p.predUrl === url);
    }
  }

  drawPreview(canvas, preview) {
    const token = (canvas._token = (canvas._token || 0) + 1);
    const bytes = Uint8Array.from(atob(preview.png), (c) => c.charCodeAt(0));
    createImageBitmap(new Blob([bytes], { type: "image/png" })).then((bitmap) => {
      if (canvas._token === token) this.paint(canvas, bitmap);
      bitmap.close();  // a preview is drawn once: its pixels are on the canvas now
    });
  }

  drawUrl(canvas, url, stillWanted) {
    const token = (canvas._token = (canvas._token || 0) + 1);
    // The target a new run would fit changes with the form: fetched again each time.
    this.images.get(url, url.startsWith(this.urls.targetPreviewPath)).then((bitmap) => {
      if (canvas._token === token && stillWanted()) this.paint(canvas, bitmap);
    }, (e) => {
      if (canvas._token === token && stillWanted()) this.blank(canvas, e.message);
    });
  }

  paint(canvas, bitmap) {
    if (canvas.width !== bitmap.width || canvas.height !== bitmap.height) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
    }
    const ctx = canvas.getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    canvas.classList.remove("empty");
    canvas.title = "";
    if (canvas.dataset.slot !== undefined && this.state?.batch.show) this.drawBatch(this.state, Number(canvas.dataset.slot));
  }

  // The training batch over the prediction: each point filled with its label's colour, ringed with the prediction's there.
  drawBatch(state, i) {
    const p = this.panels[i];
    const id = state.slots[i]?.runId;
    const b = id ? state.batch.byRun[id] : null;
    if (!p) return;
    p.batch.hidden = !(state.batch.show && b);
    if (p.batch.hidden) return;
    const pred = p.prediction;
    const w = pred.clientWidth, h = pred.clientHeight;
    const dpr = window.devicePixelRatio || 1;
    p.batch.width = Math.round(w * dpr); p.batch.height = Math.round(h * dpr);
    p.batch.style.width = `${w}px`; p.batch.style.height = `${h}px`;
    const ctx = p.batch.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const shown = pred.classList.contains("empty") ? null : pred.getContext("2d").getImageData(0, 0, pred.width, pred.height).data;
    const stops = state.meta.colour_map.stops;
    const labelColour = (label) => (Array.isArray(label)
      ? `rgb(${label.map((v) => Math.round(255 * v)).join(",")}${label.length === 1 ? `,${Math.round(255 * label[0])},${Math.round(255 * label[0])}` : ""})`
      : stops[label ? stops.length - 1 : 0]);
    b.yx.forEach(([y, x], k) => {
      const cx = ((x + 0.5) / b.width) * w, cy = ((y + 0.5) / b.height) * h;
      ctx.beginPath();
      ctx.arc(cx, cy, 2.2, 0, 2 * Math.PI);
      ctx.fillStyle = labelColour(b.labels[k]);
      ctx.fill();
      if (shown) {
        const sx = Math.min(pred.width - 1, Math.floor(((x + 0.5) / b.width) * pred.width));
        const sy = Math.min(pred.height - 1, Math.floor(((y + 0.5) / b.height) * pred.height));
        const o = 4 * (sy * pred.width + sx);
        ctx.strokeStyle = `rgb(${shown[o]},${shown[o + 1]},${shown[o + 2]})`;
      } else ctx.strokeStyle = "#888";
      ctx.lineWidth = 1.2;
      ctx.stroke();
    });
  }

  blank(canvas, text) {
    canvas.width = 4;
    canvas.height = 1;
    canvas.getContext("2d").clearRect(0, 0, 4, 1);
    canvas.classList.add("empty");
    canvas.dataset.note = text;
    canvas.parentElement.dataset.note = text;
  }

  renderLegend(state) {
    const map = state.meta.colour_map;
    const facts = modeFacts(state, state.target.mode);
    this.$("#legend").replaceChildren(...(facts.colour_mapped ? [
      el("span", { text: map.ends[0] }),
      el("span", { class: "ramp", style: `background: linear-gradient(to right, ${map.stops.join(", ")})`, title: `${map.name} colour map` }),
      el("span", { text: map.ends[1] }),
      el("small", { text: `${facts.prediction} · 0.5 = undecided` }),
    ] : [el("small", { text: `${state.target.mode} values, shown as they are` })]));
  }

  // -- curves --------------------------------------------------------------------------------------------

  drawCharts(state) {
    const series = (curve) => state.slots.map((slot, i) => ({
      colour: SLOT_COLOURS[i],
      points: slot.runId && state.runs[slot.runId] ? state.runs[slot.runId].curves[curve].points : [],
    }));
    drawChart(this.$("#chart-loss"), series("loss"), { log: true, minSpan: 0.3, format: (v) => (v >= 0.001 ? String(+v.toPrecision(2)) : v.toExponential(0)) });
    // Every run on the page fits the one target, so one mode; the chart shows its headline, or any other
    // metric the runs record (chosen in the caption), with the label, unit and range the registry serves.
    const facts = modeFacts(state, state.target.mode);
    const runs = state.slots.map((slot, i) => ({ i, run: slot.runId ? state.runs[slot.runId] : null }));
    const live = runs.map(({ run }) => run).filter(Boolean);
    const key = chartMetric(state, live, facts);
    const m = metricInfo(state, key);
    this.renderMetricChoice(state, chartableMetrics(state, live), key);
    // A run with held-out pixels shows the metric over its training pixels (solid) and over the held-out ones (dashed),
    // in its colour, instead of over every pixel; a run without (or a metric without a split's keys) keeps the one curve.
    const [fitKey, testKey] = [scopedKey(state, key, "fit_"), scopedKey(state, key, "test_")];
    const split = (run) => m.scope === "dense_" && heldOut(run);
    const points = (run, k) => run?.curves[k]?.points ?? [];
    const metric = runs.flatMap(({ i, run }) => (split(run)
      ? [{ colour: SLOT_COLOURS[i], points: points(run, fitKey) }, { colour: SLOT_COLOURS[i], dash: TEST_DASH, points: points(run, testKey) }]
      : [{ colour: SLOT_COLOURS[i], points: points(run, key) }]));
    const shown = runs.filter(({ run }) => run?.summary);
    const holding = shown.filter(({ run }) => split(run)).length;
    const unit = m.unit ? ` (${m.unit})` : "";
    this.$("#metric-caption-text").textContent = holding
      ? `${m.label}${unit} · solid: training pixels${holding < shown.length ? " (all pixels if none held out)" : ""}, dashed: held out`
      : `${m.scope === "dense_" ? "dense " : ""}${m.label}${unit}`;
    // Losses on a log scale, as the training loss; else the smallest span shown: a tenth of a bounded range
    // (accuracy), or a few units (4 dB of PSNR).
    const log = m.direction === "min" && !m.bounds;
    const minSpan = log ? 0.3 : m.bounds ? (m.bounds[1] - m.bounds[0]) / 10 : 4 / m.scale;
    drawChart(this.$("#chart-metric"), metric, { log, minSpan, clamp: m.bounds ?? undefined, format: (v) => String(+(v * m.scale).toFixed(m.digits)) });
    this.drawInside(state);
  }

  // The metric chart's caption: its text and a choice of every metric the runs record (the headline first shown).
  renderMetricChoice(state, keys, key) {
    const caption = this.$("#metric-caption");
    let text = this.$("#metric-caption-text");
    let select = this.$("#metric-choice");
    if (!select) {
      text = el("span", { id: "metric-caption-text" });
      select = el("select", { id: "metric-choice", title: "the metric this chart shows", onchange: (e) => this.h.chartMetric(e.target.value) });
      caption.replaceChildren(text, " ", select);
    }
    const options = keys.includes(key) ? keys : [key, ...keys];
    if (select.dataset.keys !== options.join(",")) {
      select.replaceChildren(...options.map((k) => el("option", { value: k, text: metricInfo(state, k)?.label ?? k })));
      select.dataset.keys = options.join(",");
    }
    select.value = key;
    select.hidden = options.length < 2;
  }

  // Per-layer diagnostics, one line per layer (one run: a colour per layer; several: the run's colour, a dash per layer),
  // and the selected run's spectral band errors as a heatmap.
  drawInside(state) {
    const shown = state.slots.map((slot, i) => ({ i, run: slot.runId ? state.runs[slot.runId] : null })).filter((s) => s.run);
    const names = [];
    for (const { run } of shown) for (const [, p] of run.curves.inside.points) for (const n of Object.keys(p.layers)) if (!names.includes(n)) names.push(n);
    const single = shown.length <= 1;
    const style = (i, li) => (single ? { colour: LAYER_COLOURS[li % LAYER_COLOURS.length] } : { colour: SLOT_COLOURS[i], dash: LAYER_DASHES[li % LAYER_DASHES.length] });
    const charts = [["#chart-dead", 0, {}], ["#chart-prestd", 1, { log: true }], ["#chart-grad", 2, { log: true }], ["#chart-update", 3, { log: true }]];
    const fmt = (v) => (v >= 0.01 && v < 1000 ? String(+v.toPrecision(2)) : v.toExponential(0));
    for (const [sel, k, options] of charts) {
      const series = [];
      for (const { i, run } of shown) {
        names.forEach((name, li) => series.push({ ...style(i, li), points: run.curves.inside.points.map(([step, p]) => [step, p.layers[name]?.[k] ?? null]) }));
      }
      drawChart(this.$(sel), series, { minSpan: options.log ? 0.3 : 0.1, clamp: k === 0 ? [0, 1] : undefined, format: k === 0 ? (v) => String(+v.toFixed(2)) : fmt, ...options });
    }
    this.$("#inside-legend").replaceChildren(...names.map((name, li) => {
      const s = style(shown[0]?.i ?? 0, li);
      const dash = s.dash?.length ? `repeating-linear-gradient(to right, currentColor 0 ${s.dash[0]}px, transparent ${s.dash[0]}px ${s.dash[0] + s.dash[1]}px)` : "currentColor";
      return el("span", { class: "layer-key", style: `color: ${single ? s.colour : "var(--ink)"}` },
        el("i", { style: `background: ${dash}` }), name === "output" ? "output" : `layer ${name}`);
    }));
    const selected = state.slots[state.active]?.runId;
    const run = selected ? state.runs[selected] : null;
    const columns = run ? run.curves.inside.points.filter(([, p]) => p.bands.length).map(([step, p]) => [step, p.bands]) : [];
    this.$("#bands-caption").textContent = run ? `spectral band error · ${selected}` : "spectral band error";
    drawHeatmap(this.$("#chart-bands"), columns, state.meta.colour_map.stops, { low: "low f", high: "high f", empty: "no evaluations yet" });
  }

  // -- existing run folders, capacity and messages ----------------------------------------------------------

  renderExisting(state) {
    const open = new Set(state.slots.map((s) => s.runId));
    const list = this.$("#existing");
    if (!state.existing.length) {
      list.replaceChildren(el("li", { class: "hint", text: "No run folders yet. Runs you start appear here, and so do runs made with `overfit train`." }));
      return;
    }
    list.replaceChildren(...state.existing.map((r) => el("li", {
      class: open.has(r.id) ? "open" : null, tabindex: 0, title: `open ${r.id} in slot ${SLOT_NAMES[state.active]}`,
      onclick: () => this.h.openRun(r.id), onkeydown: (e) => e.key === "Enter" && this.h.openRun(r.id),
    }, el("span", { class: "run-name", text: r.id }), el("span", { class: `badge ${r.status}`, text: r.status }),
    el("span", { class: "run-progress", text: `${formatStep(r.step)} / ${formatStep(r.steps)} · ${formatHeadline(modeFacts(state, r.mode), r.metric_value)}`
      + (r.test_value != null ? ` · held out ${formatHeadline(modeFacts(state, r.mode), r.test_value)}` : "") }),
    r.error ? el("span", { class: "run-error", text: r.error, title: r.error }) : null)));
  }

  renderCapacity(state) {
    const c = state.capacity;
    this.$("#capacity").textContent = c.max_runs ? `${c.running} of ${c.max_runs} training` : "";
  }

  renderMessage(state) {
    const m = this.$("#message");
    m.textContent = state.message?.text ?? "";
    m.className = `message ${state.message?.kind ?? ""}`;
  }

  renderButtons(state) {
    const runs = state.slots.map((s) => state.runs[s.runId]?.summary).filter(Boolean);
    const running = runs.some((s) => s.status === "running");
    this.$("#btn-pause").disabled = !running;
    this.$("#btn-reset").disabled = !runs.length;
    (this.root.body ?? this.root).classList.toggle("training", running);
  }
}
