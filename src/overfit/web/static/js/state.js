// The page's state: plain data and the functions that change it. No DOM, no network.
//
// The setup (target + up to four run slots, each a preset plus the fields changed from
// it) is what the URL carries, so a pasted link reopens the same experiment. Each slot
// may be bound to a run on the server (a run folder); changing the setup of a slot
// unbinds it, and the next Start makes a fresh run for the new setup, leaving the old
// run folder as it was. Everything the server knows (fields, defaults, presets, modes,
// limits) comes from /api/meta (`state.meta`); nothing of it is copied here. The target
// includes which pixels are held out of training (data.holdout): every run on the page
// fits the same pixels and is scored on the same held-out ones.

export const MAX_SLOTS = 4;
export const SLOT_NAMES = ["A", "B", "C", "D"];
// Tableau-10's first four: distinct for the common colour-blindnesses, readable on white.
export const SLOT_COLOURS = ["#4e79a7", "#e15759", "#59a14f", "#f28e2b"];

export function createState() {
  return {
    meta: null,                       // /api/meta: fields, sections, defaults, presets, modes, colour map, limits
    target: null,                     // {kind: "builtin" | "text" | "upload", text, width, height, font_size, mode, holdout, upload, uploadName}
    slots: [],
    active: 0,                        // the slot whose form is shown
    runs: {},                         // run id -> live view of that run (see runView)
    existing: [],                     // summaries of the run folders on the server
    capacity: { running: 0, max_runs: 0 },
    message: null,                    // {text, kind: "info" | "error"}
    fieldError: null,                 // {slot, field, error} from the server's 422
    // The network view of the selected run: open or not, the view shown, the unit clicked.
    network: { open: false, data: null, error: null, loading: false, unit: null },
    batch: { show: false, byRun: {} },  // the training-batch scatter over the predictions: run id -> {height, width, yx, labels}
    chartMetric: null,                // the record key the metric chart shows (null: the mode's headline)
  };
}

// The server's facts arrived: start from the default target and the default preset.
export function setMeta(state, meta) {
  state.meta = meta;
  const d = builtin(state);
  state.target = { kind: "builtin", ...d, holdout: meta.defaults.data.holdout, upload: null, uploadName: null };
  state.slots = [newSlot(meta.default_preset)];
  state.active = 0;
}

// The built-in target: the default config's picture (the original experiment's).
export function builtin(state) {
  const d = state.meta.defaults.data;
  return { text: d.text, width: d.width, height: d.height, font_size: d.font_size, mode: d.mode };
}

export function newSlot(preset, overrides = {}) {
  return { preset, overrides: { ...overrides }, runId: null };
}

// -- server facts -------------------------------------------------------------------------

// Fields shown in the target card instead of a run's form: all runs share one target.
export function isTargetField(state, key) {
  const section = key.includes(".") ? key.split(".")[0] : "";
  return state.meta.sections.some((s) => s.target && s.key === section);
}

// What the page shows for a mode: headline metric, its label and format, colour map or not.
export function modeFacts(state, mode) {
  return state.meta.modes[mode] ?? state.meta.modes[state.meta.defaults.data.mode];
}

// A headline value as the server writes it (metricinfo.Metric.format): value * scale, `digits` decimals, unit if any.
export function formatHeadline(facts, value) {
  if (value === null || value === undefined) return "–";
  const f = facts.format;
  const text = (value * f.scale).toFixed(f.digits);
  return f.unit ? `${text} ${f.unit}` : text;
}

// -- metrics: every key a run can record, with its label and format, from the server's metric registry --------

// The registry's entry for a record key (`dense_acc`, `test_psnr`), or null for a key it does not know.
export function metricInfo(state, key) {
  return state.meta.metrics[key] ?? null;
}

// The same metric over other pixels (metricinfo.scoped): scopedKey(state, "dense_acc", "test_") === "test_acc".
export function scopedKey(state, key, scope) {
  const info = metricInfo(state, key);
  return info ? `${scope}${info.name}` : null;
}

// The metric keys the chart can show for these runs: those they record over every pixel, a batch or the
// training steps, in the registry's order (a split's fit_ and test_ keys go with their dense key).
export function chartableMetrics(state, runs) {
  const recorded = new Set(runs.flatMap((run) => Object.keys(run?.curves ?? {}).filter((k) => run.curves[k].points.length)));
  return Object.values(state.meta.metrics).filter((m) => !["fit_", "test_"].includes(m.scope) && recorded.has(m.key)).map((m) => m.key);
}

// The key the metric chart shows: the one chosen while some run records it, else the mode's headline.
export function chartMetric(state, runs, facts) {
  const choice = state.chartMetric;
  return choice && chartableMetrics(state, runs).includes(choice) ? choice : facts.headline;
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
  const data = { mode: t.mode, holdout: t.holdout, image: null };
  if (t.kind === "builtin") Object.assign(data, builtin(state), { mode: t.mode });
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
  if (t.mode !== state.meta.defaults.data.mode) p.set("mode", t.mode);
  if (t.holdout !== state.meta.defaults.data.holdout) p.set("holdout", t.holdout);
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
  const d = builtin(state);
  t.kind = kind;
  if (kind === "text") {
    t.text = p.get("text") || d.text;
    t.width = Number.parseInt(p.get("w"), 10) || d.width;
    t.height = Number.parseInt(p.get("h"), 10) || d.height;
    t.font_size = Number.parseInt(p.get("font"), 10) || null;
  }
  if (kind === "upload") {
    t.upload = new RegExp(state.meta.patterns.upload).test(p.get("upload") || "") ? p.get("upload") : null;
    t.uploadName = t.upload ? "shared picture" : null;
    if (!t.upload) t.kind = "builtin";
  }
  t.mode = Object.hasOwn(state.meta.modes, p.get("mode") ?? "") ? p.get("mode") : d.mode;
  t.holdout = p.get("holdout")?.trim() || state.meta.defaults.data.holdout;  // checked by the server, as typed in the form
  const slots = [];
  for (const spec of p.getAll("run").slice(0, MAX_SLOTS)) {
    const [preset, ...changes] = spec.split("~");
    if (!state.meta.presets[preset]) continue;
    const slot = newSlot(preset);
    for (const change of changes) {
      const eq = change.indexOf("=");
      const info = fieldInfo(state, change.slice(0, eq));
      if (eq < 0 || !info || isTargetField(state, info.key)) continue;
      try {
        slot.overrides[info.key] = parseField(info, change.slice(eq + 1), change.slice(eq + 1) === "true");
      } catch { /* a hand-edited link with a bad value: keep the preset's */ }
    }
    slots.push(slot);
  }
  if (slots.length) state.slots = slots;
  const ids = (p.get("ids") || "").split(",");
  const runName = new RegExp(state.meta.patterns.run);
  state.slots.forEach((slot, i) => { slot.runId = runName.test(ids[i] || "") ? ids[i] : null; });
  state.active = 0;
  return true;
}

// The setup of an existing run, put into slot `index` (and the target it fits).
export function openRun(state, index, summary) {
  const cfg = summary.config;
  const slot = newSlot(state.meta.presets[cfg.preset] ? cfg.preset : state.meta.default_preset);
  const base = presetConfig(state, slot.preset);
  for (const info of state.meta.fields) {
    if (isTargetField(state, info.key) || info.key === "preset") continue;
    const v = getPath(cfg, info.key);
    if (v !== undefined && !sameValue(v, getPath(base, info.key))) slot.overrides[info.key] = v;
  }
  slot.runId = summary.id;
  state.slots[index] = slot;
  const d = cfg.data;
  const b = builtin(state);
  if (summary.upload) Object.assign(state.target, { kind: "upload", upload: summary.upload, uploadName: "picture of " + summary.id });
  else if (d.text === b.text && d.width === b.width && d.height === b.height && d.font_size === b.font_size) state.target.kind = "builtin";
  else Object.assign(state.target, { kind: "text", text: d.text, width: d.width, height: d.height, font_size: d.font_size });
  state.target.mode = d.mode;
  state.target.holdout = d.holdout ?? state.meta.defaults.data.holdout;
}

// -- live runs ---------------------------------------------------------------------------------

export function runView(state, id) {
  return (state.runs[id] ??= { summary: null, curves: { loss: newCurve(), inside: newCurve() },
    layerKeys: LAYER_KEYS, frames: [], preview: null, scrub: null });
}

// A run's curve of one record key (web/live.py: "loss", then one per metric key a record holds); empty until it has points.
export function curveOf(run, key) {
  return (run.curves[key] ??= newCurve());
}

// Whether a run holds pixels out of training (data.holdout), so that it has fit and test curves.
export function heldOut(run) {
  return Boolean(run?.summary?.held_out);
}

// What the inside charts show of each layer, in the order of the server's compact points (web/live.py LAYER_KEYS).
export const LAYER_KEYS = ["dead", "pre_std", "grad_norm", "update_ratio"];

// An evaluation record's view inside the network, compact as the server keeps it (web/live.py `inside`).
export function insidePoint(record, keys = LAYER_KEYS) {
  if (!record.layers || !record.layers.length) return null;
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const layers = {};
  for (const layer of record.layers) layers[String(layer.layer)] = keys.map((k) => num(layer[k]));
  return { layers, bands: (record.bands ?? []).map(num) };
}

// The step whose network the view shows for a run: the scrubbed evaluation, or null for the latest.
export function networkStep(run) {
  return run && !isLive(run) ? run.frames[run.scrub] : null;
}

// A curve as the page holds it: points [step, value], thinned as the server thins its copy
// (web/live.py's Curve): every `stride`-th point offered is kept, and past `max` points every
// other one is dropped and the stride doubles, so a long run stays light to hold and draw.
// `seen` is the last step offered, so points that arrive twice (a snapshot overtaking a tick) count once.
export function newCurve(points = [], stride = 1) {
  return { points: [...points], stride, offered: 0, seen: points.length ? points[points.length - 1][0] : -1 };
}

export function addPoints(curve, points, max) {
  let added = 0;
  for (const p of points) {
    if (p[0] <= curve.seen) continue;
    curve.seen = p[0];
    curve.offered += 1;
    if ((curve.offered - 1) % curve.stride) continue;
    curve.points.push(p);
    added += 1;
    if (curve.points.length > max) {
      curve.points = curve.points.filter((_, i) => i % 2 === 0);
      curve.stride *= 2;
    }
  }
  return added;
}

// Fold one live message into a run's view; returns which parts of the page need redrawing.
export function applyMessage(state, id, msg) {
  const run = runView(state, id);
  const max = state.meta.limits.curve_points;
  switch (msg.type) {
    case "snapshot": {
      const r = msg.run;
      run.summary = r;
      // Points already in the snapshot may still be on their way in a tick: they count once.
      // "loss" and one curve per metric key the run's records hold (a run without held-out pixels has no fit_ or test_ ones).
      run.curves = { inside: newCurve(r.inside?.points ?? [], r.inside?.stride ?? 1) };
      for (const [name, points] of Object.entries(r.curves)) run.curves[name] = newCurve(points, r.curve_strides?.[name] ?? 1);
      run.curves.loss ??= newCurve();
      run.layerKeys = r.inside?.keys ?? LAYER_KEYS;
      run.frames = r.frames;
      return { panel: true, charts: true };
    }
    case "status":
      run.summary = { ...run.summary, ...msg.run };
      return { panel: true, charts: false };
    case "tick": {
      if (!run.summary) return {};
      Object.assign(run.summary, { step: msg.step, loss: msg.loss, steps_per_s: msg.steps_per_s });
      const added = addPoints(run.curves.loss, msg.points, max);
      return { stats: true, charts: added > 0 };
    }
    case "eval":
      if (!run.summary) return {};
      if (msg.metric) {
        run.summary.metric = msg.metric;
        run.summary.metric_value = msg.record[msg.metric];
      }
      // msg.fit, msg.test: the record's keys of the headline over a split's pixels (only with held-out pixels).
      for (const name of ["fit", "test"]) if (msg[name]) run.summary[`${name}_value`] = msg.record[msg[name]] ?? null;
      // Every metric the record holds goes to its curve, as on the server (web/live.py eval_values): a value
      // that is not a finite number is no point (and is not counted for thinning).
      for (const [key, value] of Object.entries(msg.record)) {
        if (metricInfo(state, key) && typeof value === "number" && Number.isFinite(value)) addPoints(curveOf(run, key), [[msg.record.step, value]], max);
      }
      run.summary.step = msg.record.step;
      {
        const point = insidePoint(msg.record, run.layerKeys);
        if (point) addPoints(run.curves.inside, [[msg.record.step, point]], max);
      }
      if (msg.frame !== null && !run.frames.includes(msg.frame)) run.frames.push(msg.frame);
      return { stats: true, charts: true, scrub: true, network: true };
    case "preview":
      run.preview = msg;
      return { preview: true };
    default:
      return {};
  }
}

// The step and headline value of frame number `index` (for the scrub label); `test`: the held-out pixels' (or null).
// `facts`: the run's mode (modeFacts), whose headline keys name the curves.
export function frameInfo(run, index, facts) {
  const step = run.frames[index];
  const at = (key) => {
    const point = (run.curves[key]?.points ?? []).find((p) => p[0] === step);
    return point ? point[1] : null;
  };
  return { step, value: at(facts.headline), test: at(facts.test_headline) };
}

export function isLive(run) {
  return run.scrub === null || run.scrub >= run.frames.length - 1;
}
