// Controller: the page's entry point. It turns clicks, typing and server messages into
// state changes (state.js), asks the server to act (api.js) and tells the forms (forms.js)
// and views (views.js) what to redraw. It holds the only mutable objects: the state, the sockets.

import { api, follow, ApiError } from "./api.js";
import {
  SLOT_NAMES, addSlot, applyMessage, createState, fieldInfo, fromHash, getPath, openRun, parseField,
  networkStep, presetConfig, removeSlot, runView, sameValue, setMeta, setOverride, setPreset, setTarget, slotConfig, targetData, toHash,
} from "./state.js";
import { Forms } from "./forms.js";
import { Views } from "./views.js";
import { NetworkPanel } from "./netview.js";

const state = createState();
const sockets = new Map();   // run id -> follow() handle
let chartsPending = false;
let targetTimer = null;

// -- redrawing ---------------------------------------------------------------------------------

function renderAll() {
  forms.renderTarget(state);
  forms.renderSlots(state);
  views.renderPanels(state);
  views.renderExisting(state);
  views.renderButtons(state);
  views.renderCapacity(state);
  views.renderMessage(state);
  scheduleCharts();
  syncSockets();
  saveHash();
  if (state.network.open && state.network.data?.run !== selectedRun()) loadNetwork();
  loadBatches();
}

function scheduleCharts() {
  if (chartsPending) return;
  chartsPending = true;
  requestAnimationFrame(() => { chartsPending = false; views.drawCharts(state); });
}

function saveHash() {
  const hash = toHash(state);
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

function say(text, kind = "info") {
  state.message = text ? { text, kind } : null;
  views.renderMessage(state);
}

function slotsOf(id) {
  return state.slots.map((s, i) => (s.runId === id ? i : -1)).filter((i) => i >= 0);
}

// -- live updates ---------------------------------------------------------------------------------

function onMessage(id, msg) {
  const changed = applyMessage(state, id, msg);
  for (const i of slotsOf(id)) views.applyChanged(state, i, changed);
  if (changed.charts) scheduleCharts();
  if (changed.panel) { views.renderButtons(state); refreshList(); }
  // A new evaluation of the run the network view shows: its weights are on disk now (the recorder writes them first).
  if (changed.network && id === selectedRun() && isFollowing(id)) loadNetwork();
}

// -- the network view ---------------------------------------------------------------------------

let networkBusy = false, networkAgain = false;

function selectedRun() {
  return state.slots[state.active]?.runId ?? null;
}

function isFollowing(id) {
  return networkStep(state.runs[id]) === null;
}

// Fetch the view of the selected run at its scrubbed step (or the latest), one request at a time:
// evaluations that arrive meanwhile are folded into one more request when it ends.
async function loadNetwork() {
  const net = state.network;
  if (!net.open) return;
  if (networkBusy) { networkAgain = true; return; }
  const id = selectedRun();
  if (!id) { Object.assign(net, { data: null, error: "start or open a run to see inside its network", unit: null }); netPanel.render(state); return; }
  networkBusy = true;
  net.loading = true;
  try {
    const step = networkStep(state.runs[id]);
    const data = await api.network(id, step);
    if (selectedRun() === id) {
      Object.assign(net, { data, error: null });
      if (net.unit && net.unit.run === id) loadUnit(net.unit.layer, net.unit.unit);
      else net.unit = null;
    }
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    Object.assign(net, { data: null, error: e.message, unit: null });
  } finally {
    net.loading = false;
    networkBusy = false;
  }
  netPanel.render(state);
  if (networkAgain) { networkAgain = false; loadNetwork(); }
}

async function loadUnit(layer, unit) {
  const net = state.network;
  const id = net.data?.run;
  if (!id) return;
  const step = net.data.step;
  net.unit = { run: id, layer: String(layer), unit, data: net.unit?.data ?? null, error: null };
  try {
    const data = await api.networkUnit(id, layer, unit, step);
    if (net.unit?.run === id && net.unit.layer === String(layer) && net.unit.unit === unit) net.unit.data = data;
  } catch (e) {
    if (!(e instanceof ApiError)) throw e;
    if (net.unit) Object.assign(net.unit, { data: null, error: e.message });
  }
  netPanel.render(state);
}

// -- the training-batch scatter -------------------------------------------------------------------

async function loadBatches() {
  if (!state.batch.show) return;
  for (let i = 0; i < state.slots.length; i++) {
    const id = state.slots[i].runId;
    if (!id || state.batch.byRun[id]) { views.drawBatch(state, i); continue; }
    try {
      state.batch.byRun[id] = await api.batch(id, 1024);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      say(`${id}: ${e.message}`, "error");
    }
    views.drawBatch(state, i);
  }
}

// One WebSocket per run on the page; closed when no slot shows the run any more.
function syncSockets() {
  const wanted = new Set(state.slots.map((s) => s.runId).filter(Boolean));
  for (const [id, socket] of sockets) if (!wanted.has(id)) { socket.close(); sockets.delete(id); }
  for (const id of wanted) {
    if (!sockets.has(id)) {
      sockets.set(id, follow(id, (msg) => onMessage(id, msg), () => sockets.has(id),
        (reason) => say(`${id}: no live view: ${reason}`, "error")));
    }
  }
}

async function refreshList() {
  try {
    const data = await api.runs();
    state.existing = data.runs;
    state.capacity = { running: data.running, max_runs: data.max_runs };
    views.renderExisting(state);
    views.renderCapacity(state);
  } catch (e) {
    if (e instanceof ApiError && e.status === 0) say(e.message, "error");
  }
}

// -- the buttons -----------------------------------------------------------------------------------

function describe(e, i) {
  const who = state.slots.length > 1 ? `run ${SLOT_NAMES[i]}: ` : "";
  return who + (e.field && !e.message.startsWith(e.field) ? `${e.field}: ${e.message}` : e.message);
}

// Make sure slot i has a run on the server for its current setup; returns the run id.
async function ensureRun(i) {
  const slot = state.slots[i];
  if (slot.runId) return slot.runId;
  const t = state.target;
  if (t.kind === "upload" && !t.upload) throw new ApiError(422, "drop a picture on the target first", "upload");
  try {
    const detail = await api.create(slotConfig(state, slot), t.kind === "upload" ? t.upload : null);
    slot.runId = detail.id;
    const run = runView(state, detail.id);
    applyMessage(state, detail.id, { type: "snapshot", run: detail });
    run.scrub = null;
    if (state.fieldError?.slot === i) state.fieldError = null;
    return detail.id;
  } catch (e) {
    if (e instanceof ApiError && e.status === 422 && e.field) {
      state.fieldError = { slot: i, field: e.field, error: e.message };
      state.active = i;
    }
    throw e;
  }
}

async function forEachSlot(action, onlyBound = false) {
  const errors = [];
  for (let i = 0; i < state.slots.length; i++) {
    if (onlyBound && !state.slots[i].runId) continue;
    try {
      await action(i);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      errors.push(describe(e, i));
    }
  }
  renderAll();
  say(errors.join(" · "), errors.length ? "error" : "info");
  refreshList();
}

async function setStatus(i, summary) {
  const run = runView(state, summary.id);
  run.summary = { ...(run.summary ?? {}), ...summary };
}

const actions = {
  async start() {
    say("starting…");
    await forEachSlot(async (i) => {
      const id = await ensureRun(i);
      const run = runView(state, id);
      run.scrub = null;  // follow the live picture again
      if (run.summary?.status !== "done") setStatus(i, await api.action(id, "start"));
    });
  },
  async pause() {
    await forEachSlot(async (i) => {
      const s = state.runs[state.slots[i].runId]?.summary;
      if (s?.status === "running") setStatus(i, await api.action(s.id, "pause"));
    }, true);
  },
  async step() {
    await forEachSlot(async (i) => {
      const id = await ensureRun(i);
      runView(state, id).scrub = null;
      setStatus(i, await api.action(id, "step"));
    });
  },
  async reset() {
    await forEachSlot(async (i) => {
      const detail = await api.action(state.slots[i].runId, "reset");
      state.slots[i].runId = detail.id;
      applyMessage(state, detail.id, { type: "snapshot", run: detail });
    }, true);
  },
};

// -- handlers the views call ---------------------------------------------------------------------

const handlers = {
  selectSlot(i) { state.active = i; forms.renderSlots(state); loadNetwork(); },
  chartMetric(key) { state.chartMetric = key; scheduleCharts(); },
  networkUnit(layer, unit) { loadUnit(layer, unit); },
  addSlot() { addSlot(state); renderAll(); },
  removeSlot(i) { removeSlot(state, i); if (state.fieldError?.slot === i) state.fieldError = null; renderAll(); },
  preset(i, name) {
    setPreset(state, i, name);
    if (state.fieldError?.slot === i) state.fieldError = null;
    renderAll();
  },
  field(i, key, text, checked, input) {
    const info = fieldInfo(state, key);
    try {
      setOverride(state, i, key, parseField(info, text, checked));
      if (state.fieldError?.slot === i && state.fieldError.field === key) state.fieldError = null;
      forms.markField(input, !sameValue(getPath(slotConfig(state, state.slots[i]), key), getPath(presetConfig(state, state.slots[i].preset), key)), null);
      forms.updateRelevance(state);
      views.renderPanels(state);
      forms.renderSlots(state);
      syncSockets();
      saveHash();
      scheduleCharts();
    } catch (e) {
      forms.markField(input, true, e.message);
    }
  },
  targetField(field, text) {
    const value = field === "text" ? text : (text.trim() === "" ? null : Number.parseInt(text, 10));
    if (field !== "text" && field !== "font_size" && !(value >= 2)) return;  // wait for a usable number
    setTarget(state, { [field]: value });
    // Redraw the target preview once typing pauses, not on every key.
    clearTimeout(targetTimer);
    targetTimer = setTimeout(() => { views.renderPanels(state); scheduleCharts(); syncSockets(); saveHash(); }, 300);
  },
  holdout(text) {
    // Checked by the server when a run is made (a bad value is refused naming data.holdout, shown at the field).
    setTarget(state, { holdout: text.trim() || state.meta.defaults.data.holdout });
    if (state.fieldError?.field === "data.holdout") state.fieldError = null;
    renderAll();
  },
  chooseFile() { document.getElementById("file-input").click(); },
  async upload(file) {
    const limit = state.meta.limits.upload_bytes;
    if (file.size > limit) {
      say(`${file.name} is ${(file.size / 2 ** 20).toFixed(1)} MB; the limit is ${Math.round(limit / 2 ** 20)} MB`, "error");
      return;
    }
    say(`uploading ${file.name}…`);
    try {
      const up = await api.upload(file);
      setTarget(state, { kind: "upload", upload: up.id, uploadName: `${file.name} (${up.width} x ${up.height})` });
      say(`${file.name}: ${up.width} x ${up.height} pixels`);
      renderAll();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      say(`${file.name} refused: ${e.message}`, "error");
    }
  },
  scrub(i, index) {
    const id = state.slots[i].runId;
    if (!id) return;
    const run = runView(state, id);
    run.scrub = index >= run.frames.length - 1 ? null : index;
    views.updateScrub(state, i);
    views.drawPrediction(state, i);
    if (id === selectedRun()) loadNetwork();
  },
  async openRun(id) {
    try {
      const detail = await api.run(id);
      const targetKey = () => JSON.stringify(targetData(state)) + state.target.upload;
      const before = targetKey();
      openRun(state, state.active, detail);
      applyMessage(state, id, { type: "snapshot", run: detail });
      runView(state, id).scrub = null;
      // Runs in other slots that fit another target start fresh for this one.
      if (targetKey() !== before) {
        state.slots.forEach((s, i) => { if (i !== state.active) s.runId = null; });
      }
      forms.targetKind = null;
      say(`opened ${id}`);
      renderAll();
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      say(e.message, "error");
    }
  },
};

const forms = new Forms(handlers);
const views = new Views(handlers);
const netPanel = new NetworkPanel(handlers);

// -- start-up ----------------------------------------------------------------------------------------

function wire() {
  for (const [id, name] of [["btn-start", "start"], ["btn-pause", "pause"], ["btn-step", "step"], ["btn-reset", "reset"]]) {
    const button = document.getElementById(id);
    button.addEventListener("click", async () => {
      button.disabled = true;
      try { await actions[name](); } finally { button.disabled = false; views.renderButtons(state); }
    });
  }
  for (const b of document.querySelectorAll("#target-tabs button")) {
    b.addEventListener("click", () => { setTarget(state, { kind: b.dataset.kind }); renderAll(); });
  }
  document.getElementById("target-mode").addEventListener("change", (e) => { setTarget(state, { mode: e.target.value }); renderAll(); });
  document.getElementById("file-input").addEventListener("change", (e) => { if (e.target.files[0]) handlers.upload(e.target.files[0]); e.target.value = ""; });
  document.getElementById("btn-share").addEventListener("click", async () => {
    const link = location.href;
    try { await navigator.clipboard.writeText(link); say("link copied: it reopens this setup"); } catch { say(link); }
  });
  // A dropped picture anywhere on the page is meant as the target.
  window.addEventListener("dragover", (e) => e.preventDefault());
  window.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer?.files[0]) handlers.upload(e.dataTransfer.files[0]);
  });
  window.addEventListener("hashchange", () => { if (location.hash !== toHash(state) && fromHash(state, location.hash)) { forms.targetKind = null; loadBound(); } });
  window.addEventListener("resize", scheduleCharts);
  const card = document.getElementById("network-card");
  card.addEventListener("toggle", () => { state.network.open = card.open; if (card.open) loadNetwork(); });
  document.getElementById("batch-toggle").addEventListener("change", (e) => {
    state.batch.show = e.target.checked;
    if (state.batch.show) loadBatches();
    else state.slots.forEach((_, i) => views.drawBatch(state, i));
  });
}

// Runs named in the URL: show them if they still exist.
async function loadBound() {
  await Promise.all(state.slots.map(async (slot) => {
    if (!slot.runId) return;
    try {
      applyMessage(state, slot.runId, { type: "snapshot", run: await api.run(slot.runId) });
    } catch {
      slot.runId = null;
    }
  }));
  renderAll();
}

async function main() {
  try {
    setMeta(state, await api.meta());
  } catch (e) {
    say(e.message, "error");
    return;
  }
  wire();
  fromHash(state, location.hash);
  await loadBound();
  await refreshList();
  setInterval(refreshList, 5000);  // runs started elsewhere (another tab, the command line)
  document.body.classList.add("ready");
}

main();
