// The page's state: plain data and the functions that change it. No DOM, no network.
//
// The setup (target + up to four run slots, each a preset plus the fields changed from
// it) is what the URL carries, so a pasted link reopens the same experiment. Each slot
// may be bound to a run on the server (a run folder); changing the setup of a slot
// unbinds it, and the next Start makes a fresh run for the new setup, leaving the old
// run folder as it was.

export const MAX_SLOTS = 4;
export const SLOT_NAMES = ["A", "B", "C", "D"];
// Tableau-10's first four: distinct for the common colour-blindnesses, readable on white.
export const SLOT_COLOURS = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b"];
// Fields shown in the target card instead of a run's form: all runs share one target.
export const TARGET_FIELDS = ["data.text", "data.image", "data.width", "data.height", "data.font_size", "data.max_pixels", "data.mode"];
const BUILTIN = { text: "OVERFIT", width: 1000, height: 300 };

export function createState() {
  return {
    meta: null,                       // /api/meta: fields, presets, colour map, limits
    target: { kind: "builtin", text: "OVERFIT", width: 1000, height: 300, font_size: null, mode: "binary", upload: null, uploadName: null },
    slots: [newSlot("relu_1")],
    active: 0,                        // the slot whose form is shown
    runs: {},                         // run id -> live view of that run (see runView)
    existing: [],                     // summaries of the run folders on the server
    capacity: { running: 0, max_runs: 0 },
    message: null,                    // {text, kind: "info" | "error"}
    fieldError: null,                 // {slot, field, error} from the server's 422
  };
}

export function newSlot(preset, overrides = {}) {
  return { preset, overrides: { ...overrides }, runId: null };
}

// -- config -------------------------------------------------------------------------------

export function fieldInfo(state, key) {
  return state.meta.fields.find((f) => f.key === key);
}

export function getPath(obj, key) {
  return key.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
}

function setPath(obj, key, value) {
  const parts = key.split(".");
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p] ??= {};
  o[parts[parts.length - 1]] = value;
}

export function presetConfig(state, name) {
  const preset = state.meta.presets[name] ?? state.meta.presets[state.meta.default_preset];
  return structuredClone(preset.config);
}

export function targetData(state) {
  const t = state.target;
  const data = { mode: t.mode, image: null };
  if (t.kind === "builtin") Object.assign(data, BUILTIN, { font_size: null });
  else if (t.kind === "text") Object.assign(data, { text: t.text, width: t.width, height: t.height, font_size: t.font_size });
  return data;
}

// The full config a slot asks for: its preset, the shared target, then its own changes.
export function slotConfig(state, slot) {
  const cfg = presetConfig(state, slot.preset);
  Object.assign(cfg.data, targetData(state));
  for (const [key, value] of Object.entries(slot.overrides)) setPath(cfg, key, value);
  return cfg;
}

export function sameValue(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

// Set one field of a slot; a value equal to the preset's is no change at all.
export function setOverride(state, index, key, value) {
  const slot = state.slots[index];
  if (sameValue(getPath(presetConfig(state, slot.preset), key), value)) delete slot.overrides[key];
  else slot.overrides[key] = value;
  slot.runId = null;
}

export function setPreset(state, index, name) {
  const slot = state.slots[index];
  slot.preset = name;
  slot.overrides = {};
  slot.runId = null;
}

export function setTarget(state, changes) {
  const before = JSON.stringify(targetData(state)) + state.target.upload;
  Object.assign(state.target, changes);
  // Every run fits the one target: a different target needs new runs.
  if (JSON.stringify(targetData(state)) + state.target.upload !== before) for (const slot of state.slots) slot.runId = null;
}

export function addSlot(state) {
  if (state.slots.length >= MAX_SLOTS) return;
  // A new slot starts from a preset not yet on the page: comparing is the point.
  const used = new Set(state.slots.map((s) => s.preset));
  const next = Object.keys(state.meta.presets).find((p) => !used.has(p)) ?? state.meta.default_preset;
  // It keeps how the selected run trains (steps, evaluation, optimizer, seed), so the two differ
  // only by their presets' model and encoding.
  const shared = Object.entries(state.slots[state.active].overrides).filter(([k]) => !/^(model|encoding)\./.test(k));
  state.slots.push(newSlot(next, Object.fromEntries(shared)));
  state.active = state.slots.length - 1;
}

export function removeSlot(state, index) {
  if (state.slots.length <= 1) return;
  state.slots.splice(index, 1);
  state.active = Math.min(state.active, state.slots.length - 1);
}

// Parse what a form input holds into the field's JSON value; throws Error with a message.
export function parseField(info, text, checked) {
  const type = info.type;
  const nullable = type.endsWith(" or null");
  const base = nullable ? type.slice(0, -" or null".length) : type;
  if (base === "bool") return Boolean(checked);
  const raw = String(text).trim();
  if (nullable && (raw === "" || raw.toLowerCase() === "none" || raw.toLowerCase() === "null")) return null;
  if (base === "int") {
    if (!/^-?\d+$/.test(raw)) throw new Error("expected a whole number");
    return Number.parseInt(raw, 10);
  }
  if (base === "float") {
    const v = Number(raw);
    if (raw === "" || !Number.isFinite(v)) throw new Error("expected a number");
    return v;
  }
  if (base === "list of int") {
    const parts = raw.split(",").map((p) => p.trim()).filter((p) => p !== "");
    if (!parts.length || !parts.every((p) => /^-?\d+$/.test(p))) throw new Error("expected whole numbers separated by commas, e.g. 64,256,64");
    return parts.map((p) => Number.parseInt(p, 10));
  }
  return raw;
}

export function formatField(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.join(",");
  return String(value);
}

// -- the URL ----------------------------------------------------------------------------------

// #target=text&text=HI&w=200&h=80&mode=binary&run=relu_1&run=cos_3~optim.lr=0.001&ids=runA,runB
export function toHash(state) {
  const p = new URLSearchParams();
  const t = state.target;
  p.set("target", t.kind);
  if (t.kind === "text") {
    p.set("text", t.text);
    p.set("w", t.width);
    p.set("h", t.height);
    if (t.font_size) p.set("font", t.font_size);
  }
  if (t.kind === "upload" && t.upload) p.set("upload", t.upload);
  if (t.mode !== "binary") p.set("mode", t.mode);
  for (const slot of state.slots) {
    const changes = Object.entries(slot.overrides).map(([k, v]) => `~${k}=${v === null ? "none" : formatField(v)}`);
    p.append("run", slot.preset + changes.join(""));
  }
  if (state.slots.some((s) => s.runId)) p.set("ids", state.slots.map((s) => s.runId ?? "").join(","));
  return "#" + p.toString();
}

// The setup a URL hash describes; unknown presets and fields are skipped, not fatal.
export function fromHash(state, hash) {
  const p = new URLSearchParams(hash.replace(/^#/, ""));
  if (!p.has("target") && !p.has("run")) return false;
  const kind = ["builtin", "text", "upload"].includes(p.get("target")) ? p.get("target") : "builtin";
  const t = state.target;
  t.kind = kind;
  if (kind === "text") {
    t.text = p.get("text") || "OVERFIT";
    t.width = Number.parseInt(p.get("w"), 10) || BUILTIN.width;
    t.height = Number.parseInt(p.get("h"), 10) || BUILTIN.height;
    t.font_size = Number.parseInt(p.get("font"), 10) || null;
  }
  if (kind === "upload") {
    t.upload = /^[0-9a-f]{64}$/.test(p.get("upload") || "") ? p.get("upload") : null;
    t.uploadName = t.upload ? "shared picture" : null;
    if (!t.upload) t.kind = "builtin";
  }
  t.mode = state.meta.modes.includes(p.get("mode")) ? p.get("mode") : "binary";
  const slots = [];
  for (const spec of p.getAll("run").slice(0, MAX_SLOTS)) {
    const [preset, ...changes] = spec.split("~");
    if (!state.meta.presets[preset]) continue;
    const slot = newSlot(preset);
    for (const change of changes) {
      const eq = change.indexOf("=");
      const info = fieldInfo(state, change.slice(0, eq));
      if (eq < 0 || !info || TARGET_FIELDS.includes(info.key)) continue;
      try {
        slot.overrides[info.key] = parseField(info, change.slice(eq + 1), change.slice(eq + 1) === "true");
      } catch { /* a hand-edited link with a bad value: keep the preset's */ }
    }
    slots.push(slot);
  }
  if (slots.length) state.slots = slots;
  const ids = (p.get("ids") || "").split(",");
  state.slots.forEach((slot, i) => { slot.runId = /^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(ids[i] || "") ? ids[i] : null; });
  state.active = 0;
  return true;
}

// The setup of an existing run, put into slot `index` (and the target it fits).
export function openRun(state, index, summary) {
  const cfg = summary.config;
  const slot = newSlot(state.meta.presets[cfg.preset] ? cfg.preset : state.meta.default_preset);
  const base = presetConfig(state, slot.preset);
  for (const info of state.meta.fields) {
    if (TARGET_FIELDS.includes(info.key) || info.key === "preset") continue;
    const v = getPath(cfg, info.key);
    if (v !== undefined && !sameValue(v, getPath(base, info.key))) slot.overrides[info.key] = v;
  }
  slot.runId = summary.id;
  state.slots[index] = slot;
  const d = cfg.data;
  if (summary.upload) Object.assign(state.target, { kind: "upload", upload: summary.upload, uploadName: "picture of " + summary.id });
  else if (d.text === BUILTIN.text && d.width === BUILTIN.width && d.height === BUILTIN.height && !d.font_size) state.target.kind = "builtin";
  else Object.assign(state.target, { kind: "text", text: d.text, width: d.width, height: d.height, font_size: d.font_size });
  state.target.mode = d.mode;
}

// -- live runs ---------------------------------------------------------------------------------

export function runView(state, id) {
  return (state.runs[id] ??= { summary: null, curves: { loss: [], metric: [] }, frames: [], preview: null, scrub: null });
}

// Fold one live message into a run's view; returns which parts of the page need redrawing.
export function applyMessage(state, id, msg) {
  const run = runView(state, id);
  switch (msg.type) {
    case "snapshot":
      run.summary = msg.run;
      run.curves = { loss: msg.run.curves.loss, metric: msg.run.curves.metric };
      run.frames = msg.run.frames;
      return { panel: true, charts: true };
    case "status":
      run.summary = { ...run.summary, ...msg.run };
      return { panel: true, charts: false };
    case "tick":
      if (!run.summary) return {};
      Object.assign(run.summary, { step: msg.step, loss: msg.loss, steps_per_s: msg.steps_per_s });
      // Points already in a snapshot taken while they were on their way are skipped.
      const last = run.curves.loss.length ? run.curves.loss[run.curves.loss.length - 1][0] : -1;
      const fresh = msg.points.filter((p) => p[0] > last);
      run.curves.loss.push(...fresh);
      return { stats: true, charts: fresh.length > 0 };
    case "eval":
      if (!run.summary) return {};
      if (msg.metric) {
        run.summary.metric = msg.metric;
        run.summary.metric_value = msg.record[msg.metric];
        const m = run.curves.metric;
        if (!m.length || m[m.length - 1][0] < msg.record.step) m.push([msg.record.step, msg.record[msg.metric]]);
      }
      run.summary.step = msg.record.step;
      if (msg.frame !== null && !run.frames.includes(msg.frame)) run.frames.push(msg.frame);
      return { stats: true, charts: true, scrub: true };
    case "preview":
      run.preview = msg;
      return { preview: true };
    default:
      return {};
  }
}

// The step and headline value of frame number `index` (for the scrub label).
export function frameInfo(run, index) {
  const step = run.frames[index];
  const point = run.curves.metric.find((p) => p[0] === step);
  return { step, value: point ? point[1] : null };
}

export function isLive(run) {
  return run.scrub === null || run.scrub >= run.frames.length - 1;
}
