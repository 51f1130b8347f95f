// The notebook widget (anywidget): the lab page's views (views.js, state.js, charts.js) drawing the runs of a
// Python `overfit.notebook.Lab`. Like the page's controller it folds live messages into the state with
// applyMessage and asks the views to redraw; the messages come from the kernel (model custom messages)
// instead of a WebSocket, and pictures from the model's traits or a request to the kernel instead of URLs.
// bundle.py links this file and the lab's modules it imports into one module.

import { Views } from "./views.js";
import { applyMessage, createState, newSlot, runView, setMeta } from "./state.js";
import { el } from "./dom.js";

// The part of the lab page the views draw into (index.html's workspace, without the forms and network view).
function skeleton() {
  const chart = (id, caption, cls = "chart") => el("figure", { class: cls }, el("figcaption", { id: `${id}-caption` }, caption), el("canvas", { id }));
  return [
    el("div", { class: "widget-bar controls", role: "toolbar", "aria-label": "training controls" },
      el("button", { id: "btn-start", class: "primary", title: "Train every run to its last step" }, "▶ Start"),
      el("button", { id: "btn-pause", title: "Pause every run at a checkpoint" }, "❙❙ Pause"),
      el("button", { id: "btn-step", title: "Train one evaluation interval, then pause" }, "⇥ Step"),
      el("span", { id: "message", class: "message", role: "status" })),
    el("div", { id: "panels", class: "panels" }),
    el("div", { id: "legend", class: "legend" }),
    el("div", { class: "charts" }, chart("chart-loss", "training loss (log scale)"),
      el("figure", { class: "chart" }, el("figcaption", { id: "metric-caption" }), el("canvas", { id: "chart-metric" }))),
    el("div", { id: "inside-legend", class: "inside-legend" }),
    el("div", { class: "charts inside-charts" },
      chart("chart-dead", "dead units (fraction per layer)", "chart small"), chart("chart-prestd", "pre-activation std (log)", "chart small"),
      chart("chart-grad", "gradient norm (log)", "chart small"), chart("chart-update", "update ratio (log, |ΔW| / |W|)", "chart small")),
    el("figure", { class: "chart bands" }, el("figcaption", {}, el("span", { id: "bands-caption" }, "spectral band error")), el("canvas", { id: "chart-bands" })),
  ];
}

function bitmapOf(bytes) {
  return createImageBitmap(new Blob([bytes], { type: "image/png" }));
}

const fromBase64 = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));

function render({ model, el: host }) {
  host.classList.add("overfit-widget");
  host.replaceChildren(...skeleton());
  const state = createState();
  setMeta(state, { ...model.get("meta"), downloads: [] });   // files stay in the run folder: no download links
  const asked = new Map();   // "run/step" -> {resolve, reject}: frames asked of the kernel
  let chartsPending = false;

  // Pictures by pseudo-URL: a run's target and newest frame from the traits, any other frame asked of the kernel.
  const urls = {
    target: (id) => `target/${id}`,
    frame: (id, step) => `frame/${id}/${step}`,
    targetPreviewPath: "preview/",
    targetPreview: () => "preview/",
    download: () => "",
  };
  const load = (url) => {
    const [kind, id, step] = url.split("/");
    if (kind === "target" && model.get("targets")[id]) return bitmapOf(fromBase64(model.get("targets")[id]));
    const latest = model.get("latest")[id];
    if (kind === "frame" && latest && String(latest.step) === step) return bitmapOf(fromBase64(latest.png));
    if (kind !== "frame") return Promise.reject(new Error("no picture"));
    return new Promise((resolve, reject) => {
      asked.set(`${id}/${step}`, { resolve, reject });
      model.send({ type: "frame", run: id, step: Number(step) });
    }).then(bitmapOf);
  };

  const handlers = {
    scrub(i, index) {
      const run = runView(state, state.slots[i].runId);
      run.scrub = index >= run.frames.length - 1 ? null : index;
      views.updateScrub(state, i);
      views.drawPrediction(state, i);
    },
    chartMetric(key) { state.chartMetric = key; scheduleCharts(); },
  };
  const views = new Views(handlers, { root: host, urls, load });

  function scheduleCharts() {
    if (chartsPending) return;
    chartsPending = true;
    requestAnimationFrame(() => { chartsPending = false; views.drawCharts(state); });
  }

  function renderButtons() {
    const statuses = state.slots.map((s) => state.runs[s.runId]?.summary?.status);
    const open = statuses.some((s) => s !== "done" && s !== "failed");
    host.querySelector("#btn-pause").disabled = !statuses.includes("running");
    host.querySelector("#btn-start").disabled = !open || statuses.every((s) => s === "running" || s === "done");
    host.querySelector("#btn-step").disabled = !open;
    host.classList.toggle("training", statuses.includes("running"));
    host.querySelector("#message").textContent = model.get("message");
    host.querySelector("#message").className = `message ${model.get("message") ? "error" : ""}`;
  }

  // The runs' state (the kernel's `runs` trait: each as GET /api/runs/{id} answers), as the page's snapshot message.
  function sync() {
    const details = model.get("runs");
    state.slots = details.map((d) => ({ ...newSlot(state.meta.presets[d.preset] ? d.preset : state.meta.default_preset), runId: d.id }));
    for (const d of details) applyMessage(state, d.id, { type: "snapshot", run: d });
    if (details.length) state.target.mode = details[0].mode;
    views.renderPanels(state);
    scheduleCharts();
    renderButtons();
  }

  // The live messages, exactly as the page's controller folds a WebSocket's.
  function onLive(id, msg) {
    const changed = applyMessage(state, id, msg);
    state.slots.forEach((slot, i) => { if (slot.runId === id) views.applyChanged(state, i, changed); });
    if (changed.charts) scheduleCharts();
    if (changed.panel) renderButtons();
  }

  function onCustom(msg, buffers) {
    if (msg.type === "live") for (const [id, m] of msg.messages) onLive(id, m);
    else if (msg.type === "frame") {
      const key = `${msg.run}/${msg.step}`;
      const waiting = asked.get(key);
      asked.delete(key);
      if (waiting) (msg.ok ? waiting.resolve(buffers[0]) : waiting.reject(new Error(msg.error)));
    }
  }

  for (const action of ["start", "pause", "step"]) {
    host.querySelector(`#btn-${action}`).addEventListener("click", () => model.send({ type: "action", action }));
  }
  model.on("change:runs", sync);
  model.on("change:message", renderButtons);
  model.on("msg:custom", onCustom);
  const resized = new ResizeObserver(() => scheduleCharts());
  resized.observe(host);
  sync();
  return () => {
    model.off("change:runs", sync);
    model.off("change:message", renderButtons);
    model.off("msg:custom", onCustom);
    resized.disconnect();
    views.images.clear();
  };
}

export default { render };
