// Views: draw the runs into the page (panels, pictures, curves, the run folder list, messages).
// They read the state and call the handlers the controller passes in; they never change the
// state or talk to the server themselves. The setup forms are in forms.js.

import { drawChart, formatStep } from "./charts.js";
import { urls } from "./api.js";
import { $, el } from "./dom.js";
import { ImageCache } from "./images.js";
import { SLOT_COLOURS, SLOT_NAMES, builtin, formatHeadline, frameInfo, isLive, modeFacts, slotConfig, targetData } from "./state.js";

async function loadBitmap(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `HTTP ${r.status}`);
  return createImageBitmap(await r.blob());
}

export class Views {
  constructor(handlers) {
    this.h = handlers;
    this.panels = [];            // per slot: {root, els..., targetUrl}
    this.images = new ImageCache(loadBitmap);
  }

  // -- run panels -------------------------------------------------------------------------------------

  renderPanels(state) {
    const root = $("#panels");
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
    p.predCaption = el("figcaption", { class: "pred-caption" });
    p.scrub = el("input", { type: "range", class: "scrub", min: 0, max: 0, value: 0, "aria-label": "scrub through the saved evaluations",
      oninput: (e) => this.h.scrub(i, Number(e.target.value)) });
    p.scrubLabel = el("span", { class: "scrub-label" });
    p.downloads = el("div", { class: "downloads" });
    p.error = el("p", { class: "panel-error" });
    p.pictures = el("div", { class: "pictures" },
      el("figure", {}, p.target, el("figcaption", { text: "target" })),
      el("figure", {}, p.prediction, p.predCaption));
    p.root = el("article", { class: "panel", style: `--slot: ${SLOT_COLOURS[i]}`, dataset: { slot: i } },
      el("header", {}, el("span", { class: "swatch" }), p.title, p.status, p.runId),
      p.pictures,
      el("div", { class: "stats" },
        el("span", {}, "step ", p.step), el("span", {}, p.sps, " steps/s"), el("span", {}, "loss ", p.loss), el("span", {}, p.metricName, " ", p.metric)),
      el("div", { class: "scrubber" }, p.scrub, p.scrubLabel),
      p.downloads, p.error);
    return p;
  }

  updatePanel(state, i) {
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
      .map(({ kind, label, at_the_end }) => (s.files[kind] ? el("a", { href: urls.download(slot.runId, kind), download: "", text: label })
        : el("span", { class: "unavailable", text: label, title: at_the_end ? "written when training ends" : "written when training reaches it" }))) : []));
    // Target picture: the run's own copy, or what a new run would fit.
    const targetUrl = slot.runId && s ? urls.target(slot.runId) : urls.targetPreview(data, state.target.kind === "upload" ? state.target.upload : null);
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
    const { step, value } = frameInfo(run, index);
    const live = isLive(run) && run.summary?.status === "running";
    const facts = modeFacts(state, run.summary?.mode ?? state.target.mode);
    p.scrubLabel.textContent = `${live ? "live · " : ""}evaluation ${index + 1} of ${n} · step ${formatStep(step)} · ${formatHeadline(facts, value)}`;
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
    const url = urls.frame(id, step);
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
    this.images.get(url, url.startsWith(urls.targetPreviewPath)).then((bitmap) => {
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
    $("#legend").replaceChildren(...(facts.colour_mapped ? [
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
    drawChart($("#chart-loss"), series("loss"), { log: true, minSpan: 0.3, format: (v) => (v >= 0.001 ? String(+v.toPrecision(2)) : v.toExponential(0)) });
    // Every run on the page fits the one target, so one mode's headline: its label, unit and range.
    const facts = modeFacts(state, state.target.mode);
    const f = facts.format;
    $("#metric-caption").textContent = `dense ${facts.label} (${f.unit})`;
    // The smallest span shown: a tenth of a bounded range (accuracy), else a few units (4 dB of PSNR).
    const minSpan = f.bounds ? (f.bounds[1] - f.bounds[0]) / 10 : 4 / f.scale;
    drawChart($("#chart-metric"), series("metric"), { minSpan, clamp: f.bounds ?? undefined, format: (v) => String(+(v * f.scale).toFixed(f.digits)) });
  }

  // -- existing run folders, capacity and messages ----------------------------------------------------------

  renderExisting(state) {
    const open = new Set(state.slots.map((s) => s.runId));
    const list = $("#existing");
    if (!state.existing.length) {
      list.replaceChildren(el("li", { class: "hint", text: "No run folders yet. Runs you start appear here, and so do runs made with `overfit train`." }));
      return;
    }
    list.replaceChildren(...state.existing.map((r) => el("li", {
      class: open.has(r.id) ? "open" : null, tabindex: 0, title: `open ${r.id} in slot ${SLOT_NAMES[state.active]}`,
      onclick: () => this.h.openRun(r.id), onkeydown: (e) => e.key === "Enter" && this.h.openRun(r.id),
    }, el("span", { class: "run-name", text: r.id }), el("span", { class: `badge ${r.status}`, text: r.status }),
    el("span", { class: "run-progress", text: `${formatStep(r.step)} / ${formatStep(r.steps)} · ${formatHeadline(modeFacts(state, r.mode), r.metric_value)}` }),
    r.error ? el("span", { class: "run-error", text: r.error, title: r.error }) : null)));
  }

  renderCapacity(state) {
    const c = state.capacity;
    $("#capacity").textContent = c.max_runs ? `${c.running} of ${c.max_runs} training` : "";
  }

  renderMessage(state) {
    const m = $("#message");
    m.textContent = state.message?.text ?? "";
    m.className = `message ${state.message?.kind ?? ""}`;
  }

  renderButtons(state) {
    const runs = state.slots.map((s) => state.runs[s.runId]?.summary).filter(Boolean);
    const running = runs.some((s) => s.status === "running");
    $("#btn-pause").disabled = !running;
    $("#btn-reset").disabled = !runs.length;
    document.body.classList.toggle("training", running);
  }
}
