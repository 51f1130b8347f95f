// Views: draw the state into the page. They read the state and call the handlers the
// controller passes in; they never change the state or talk to the server themselves.

import { drawChart, formatStep } from "./charts.js";
import { urls } from "./api.js";
import {
  SLOT_COLOURS, SLOT_NAMES, MAX_SLOTS, TARGET_FIELDS, formatField, frameInfo, getPath,
  isLive, presetConfig, sameValue, slotConfig, targetData,
} from "./state.js";

const $ = (sel, root = document) => root.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) node.append(c);
  return node;
}

export function metricLabel(metric) {
  return metric === "dense_psnr" ? "PSNR" : "accuracy";
}

export function formatMetric(metric, value) {
  if (value === null || value === undefined) return "–";
  return metric === "dense_psnr" ? `${value.toFixed(2)} dB` : `${(100 * value).toFixed(1)} %`;
}

const SECTION_TITLES = { "": "general", model: "model", encoding: "encoding", optim: "optimizer", schedule: "schedule" };
const OPEN_SECTIONS = new Set(["model", "optim", "schedule"]);

export class Views {
  constructor(handlers) {
    this.h = handlers;
    this.panels = [];            // per slot: {root, els..., targetUrl}
    this.images = new Map();     // url -> Promise<ImageBitmap>
    this.targetKind = null;
  }

  // -- target card -----------------------------------------------------------------------------

  renderTarget(state) {
    const t = state.target;
    for (const b of document.querySelectorAll("#target-tabs button")) b.setAttribute("aria-selected", String(b.dataset.kind === t.kind));
    const mode = $("#target-mode");
    if (!mode.options.length) for (const m of state.meta.modes) mode.append(el("option", { value: m, text: m }));
    mode.value = t.mode;
    const body = $("#target-body");
    if (this.targetKind !== t.kind || t.kind === "upload") {
      this.targetKind = t.kind;
      body.replaceChildren(...this.targetBody(state));
    } else if (t.kind === "text") {
      for (const input of body.querySelectorAll("[data-target-field]")) {
        if (document.activeElement !== input) input.value = formatField(t[input.dataset.targetField]);
      }
    }
  }

  targetBody(state) {
    const t = state.target;
    if (t.kind === "builtin") {
      return [el("p", { class: "hint", text: "The original experiment's picture: OVERFIT in bold black letters, 1000 x 300 pixels." })];
    }
    if (t.kind === "text") {
      const input = (field, attrs) => el("input", { "data-target-field": field, value: formatField(t[field]), oninput: (e) => this.h.targetField(field, e.target.value), ...attrs });
      return [
        el("textarea", { id: "target-text", rows: 2, "data-target-field": "text", placeholder: "text to fit", oninput: (e) => this.h.targetField("text", e.target.value) }, t.text),
        el("div", { class: "grid3" },
          el("label", {}, "width", input("width", { type: "number", min: 2, id: "target-width" })),
          el("label", {}, "height", input("height", { type: "number", min: 2, id: "target-height" })),
          el("label", {}, "font size", input("font_size", { type: "number", min: 1, placeholder: "auto" }))),
      ];
    }
    const limits = state.meta.limits;
    const zone = el("div", {
      class: "dropzone", id: "dropzone", tabindex: 0, role: "button",
      onclick: () => this.h.chooseFile(),
      onkeydown: (e) => (e.key === "Enter" || e.key === " ") && this.h.chooseFile(),
      ondragover: (e) => { e.preventDefault(); zone.classList.add("over"); },
      ondragleave: () => zone.classList.remove("over"),
      ondrop: (e) => { e.preventDefault(); zone.classList.remove("over"); if (e.dataTransfer.files[0]) this.h.upload(e.dataTransfer.files[0]); },
    },
    el("strong", { text: t.upload ? `✓ ${t.uploadName || "picture"}` : "Drop a picture here" }),
    el("span", { text: t.upload ? "drop another to replace it" : "or click to choose one" }),
    el("small", { text: `PNG, JPEG, GIF, BMP, WebP, TIFF · up to ${Math.round(limits.upload_bytes / 2 ** 20)} MB and ${(limits.pixels / 1e6).toFixed(1)} megapixels` }));
    return [zone];
  }

  // -- run slots and their config forms -------------------------------------------------------------

  renderSlots(state) {
    const tabs = $("#slot-tabs");
    tabs.replaceChildren(
      ...state.slots.map((slot, i) => el("button", {
        role: "tab", "aria-selected": String(i === state.active), style: `--slot: ${SLOT_COLOURS[i]}`,
        class: state.fieldError?.slot === i ? "invalid" : null, onclick: () => this.h.selectSlot(i),
      }, el("span", { class: "swatch" }), `${SLOT_NAMES[i]} · ${slot.preset}`, Object.keys(slot.overrides).length ? "*" : "",
      state.slots.length > 1 ? el("span", { class: "close", title: "remove this run from the comparison", text: "×", onclick: (e) => { e.stopPropagation(); this.h.removeSlot(i); } }) : null)),
      state.slots.length < MAX_SLOTS ? el("button", { class: "add", title: "add a run to compare", onclick: () => this.h.addSlot(), text: "+ compare" }) : null,
    );
    this.renderForm(state);
  }

  renderForm(state) {
    const i = state.active;
    const slot = state.slots[i];
    const cfg = slotConfig(state, slot);
    const base = presetConfig(state, slot.preset);
    const presetSelect = el("select", { id: "preset-select", onchange: (e) => this.h.preset(i, e.target.value) },
      ...Object.keys(state.meta.presets).map((name) => el("option", { value: name, selected: name === slot.preset, text: name })));
    const sections = new Map();
    for (const info of state.meta.fields) {
      if (TARGET_FIELDS.includes(info.key) || info.key === "preset") continue;
      const section = info.key.includes(".") ? info.key.split(".")[0] : "";
      if (!sections.has(section)) sections.set(section, []);
      sections.get(section).push(this.fieldRow(state, i, info, getPath(cfg, info.key), getPath(base, info.key)));
    }
    const order = ["model", "encoding", "optim", "schedule", ""];
    $("#slot-form").replaceChildren(
      el("label", { class: "row preset-row" }, "preset", presetSelect),
      el("p", { class: "hint preset-description", text: state.meta.presets[slot.preset]?.description ?? "" }),
      ...order.filter((s) => sections.has(s)).map((s) => el("details", { class: "section", open: OPEN_SECTIONS.has(s) },
        el("summary", { text: SECTION_TITLES[s] ?? s }), ...sections.get(s))),
    );
    this.updateRelevance(state);
  }

  // Hide fields that do not matter for the current choices (w0 without siren or gauss, sigma without Fourier features).
  updateRelevance(state) {
    const cfg = slotConfig(state, state.slots[state.active]);
    for (const info of state.meta.fields) {
      if (!info.applies_when) continue;
      const [key, values] = info.applies_when;
      const row = document.querySelector(`#slot-form .field[data-key="${info.key}"]`);
      if (row) row.style.display = values.includes(getPath(cfg, key)) ? "" : "none";
    }
  }

  fieldRow(state, slotIndex, info, value, presetValue) {
    const name = info.key.includes(".") ? info.key.split(".").slice(1).join(".") : info.key;
    const changed = !sameValue(value, presetValue);
    const err = state.fieldError?.slot === slotIndex && state.fieldError.field === info.key ? state.fieldError.error : null;
    const onChange = (e) => this.h.field(slotIndex, info.key, e.target.value, e.target.checked, e.target);
    let input;
    if (info.choices) {
      input = el("select", { onchange: onChange }, ...info.choices.map((c) => el("option", { value: c, text: c, selected: c === value })));
    } else if (info.type === "bool") {
      input = el("input", { type: "checkbox", checked: Boolean(value), onchange: onChange });
    } else {
      const numeric = info.type === "int" || info.type === "float";
      input = el("input", { type: numeric ? "number" : "text", step: info.type === "float" ? "any" : null, value: formatField(value),
        placeholder: info.type.endsWith("or null") ? "none" : null, onchange: onChange });
    }
    input.name = info.key;
    input.title = info.doc;
    return el("label", { class: `field${changed ? " changed" : ""}${err ? " invalid" : ""}`, title: info.doc, "data-key": info.key },
      el("span", { class: "field-name", text: name }), input, err ? el("span", { class: "field-error", text: err }) : null);
  }

  markField(target, changed, error) {
    const label = target.closest(".field");
    label.classList.toggle("changed", changed);
    label.classList.toggle("invalid", Boolean(error));
    label.querySelector(".field-error")?.remove();
    if (error) label.append(el("span", { class: "field-error", text: error }));
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
    const [h, w] = s ? [s.height, s.width] : [data.height ?? 300, data.width ?? 1000];
    // Wide pictures stack (target over prediction) when panels share the width; otherwise side by side.
    p.pictures.classList.toggle("wide", w >= 1.6 * h && state.slots.length > 1);
    if (w && h) p.pictures.style.setProperty("--aspect", `${w} / ${h}`);
    this.updateStats(state, i);
    this.updateScrub(state, i);
    p.error.textContent = s?.error ?? "";
    p.downloads.replaceChildren(...(s ? Object.entries({ video: "video", gif: "gif", final: "final picture", config: "config", checkpoint: "checkpoint" })
      .map(([kind, label]) => (s.files[kind] ? el("a", { href: urls.download(slot.runId, kind), download: "", text: label }) : el("span", { class: "unavailable", text: label, title: "written when training reaches it" }))) : []));
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
    const metric = s?.metric ?? (cfg.data.mode === "binary" ? "dense_acc" : "dense_psnr");
    p.metricName.textContent = metricLabel(metric);
    p.metric.textContent = formatMetric(metric, s?.metric_value);
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
    p.scrubLabel.textContent = `${live ? "live · " : ""}evaluation ${index + 1} of ${n} · step ${formatStep(step)} · ${formatMetric(run.summary?.metric, value)}`;
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
    });
  }

  drawUrl(canvas, url, stillWanted) {
    const token = (canvas._token = (canvas._token || 0) + 1);
    if (!this.images.has(url) || url.startsWith("/api/target.png")) {
      this.images.set(url, fetch(url).then(async (r) => {
        if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || `HTTP ${r.status}`);
        return createImageBitmap(await r.blob());
      }));
    }
    this.images.get(url).then((bitmap) => {
      if (canvas._token === token && stillWanted()) this.paint(canvas, bitmap);
    }, (e) => {
      this.images.delete(url);
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
    const stops = state.meta.colour_map.stops;
    const binary = state.target.mode === "binary";
    $("#legend").replaceChildren(...(binary ? [
      el("span", { text: "ink" }),
      el("span", { class: "ramp", style: `background: linear-gradient(to right, ${stops.join(", ")})`, title: `${state.meta.colour_map.name} colour map` }),
      el("span", { text: "background" }),
      el("small", { text: "prediction: probability of background (0.5 = undecided)" }),
    ] : [el("small", { text: `${state.target.mode} values, shown as they are` })]));
  }

  // -- curves --------------------------------------------------------------------------------------------

  drawCharts(state) {
    const series = (curve) => state.slots.map((slot, i) => ({
      colour: SLOT_COLOURS[i],
      points: slot.runId && state.runs[slot.runId] ? state.runs[slot.runId].curves[curve] : [],
    }));
    drawChart($("#chart-loss"), series("loss"), { log: true, minSpan: 0.3, format: (v) => (v >= 0.001 ? String(+v.toPrecision(2)) : v.toExponential(0)) });
    const psnr = state.slots.some((s) => state.runs[s.runId]?.summary?.metric === "dense_psnr") || state.target.mode !== "binary";
    $("#metric-caption").textContent = psnr ? "dense PSNR (dB)" : "dense accuracy";
    drawChart($("#chart-metric"), series("metric"), psnr
      ? { minSpan: 4, format: (v) => v.toFixed(0) }
      : { minSpan: 0.1, clamp: [0, 1], format: (v) => `${+(v * 100).toFixed(1)} %` });
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
    el("span", { class: "run-progress", text: `${formatStep(r.step)} / ${formatStep(r.steps)} · ${formatMetric(r.metric, r.metric_value)}` }))));
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
