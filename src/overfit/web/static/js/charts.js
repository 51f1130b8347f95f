// Line charts on a canvas: several runs' curves overlaid, one colour per run.
// Drawn by hand (a few dozen lines) instead of shipping a chart library: the page
// loads nothing from the network and needs no build step.

const PAD = { left: 52, right: 12, top: 10, bottom: 26 };

// "Nice" tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten.
function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

// Ticks for a log axis, as log10 values in [lo, hi]: 1-2-5 steps of each decade, thinned to
// whole decades when the range spans many; a range inside one decade gets evenly spaced values.
function logTicks(lo, hi) {
  const out = [];
  for (let d = Math.floor(lo); d <= Math.ceil(hi); d++) {
    for (const m of [1, 2, 5]) {
      const t = d + Math.log10(m);
      if (t >= lo && t <= hi) out.push(t);
    }
  }
  if (out.length > 6) return out.filter((t) => Number.isInteger(Math.round(t * 1e9) / 1e9));
  if (out.length >= 2) return out;
  return ticks(10 ** lo, 10 ** hi, 3).filter((v) => v > 0).map((v) => Math.log10(v));
}

export function formatStep(v) {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(Math.round(v));
}

// series: [{colour, points: [[step, value], ...]}]
// A cleared canvas sized to its box at the screen's pixel density, drawn in CSS pixels:
// {ctx, w, h}, or null while the canvas has no size (hidden).
function blank(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (!w || !h) return null;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w, h };
}

// options: {log, format, fixed: [lo, hi], minSpan (smallest y range shown), clamp: [lo, hi] for that range}
export function drawChart(canvas, series, options = {}) {
  const drawn = blank(canvas);
  if (!drawn) return;
  const { ctx, w, h } = drawn;
  const style = getComputedStyle(canvas);
  const ink = style.getPropertyValue("--chart-ink") || "#555";
  const grid = style.getPropertyValue("--chart-grid") || "#e5e5e5";

  const transform = options.log ? (v) => Math.log10(v) : (v) => v;
  const usable = series.map((s) => ({ ...s, points: s.points.filter(([, v]) => v !== null && Number.isFinite(v) && (!options.log || v > 0)) }));
  const all = usable.flatMap((s) => s.points);
  if (!all.length) {
    ctx.fillStyle = ink;
    ctx.textAlign = "center";
    ctx.fillText("no data yet: press Start", w / 2, h / 2);
    return;
  }
  const xMax = Math.max(10, ...all.map((p) => p[0]));
  let [yLo, yHi] = options.fixed ?? [Math.min(...all.map((p) => transform(p[1]))), Math.max(...all.map((p) => transform(p[1])))];
  if (!options.fixed) {
    // A flat start (one evaluation, two runs alike) gets a readable span around it, not a zoom into noise.
    const minSpan = options.minSpan ?? 1e-6;
    if (yHi - yLo < minSpan) {
      const mid = (yHi + yLo) / 2;
      [yLo, yHi] = [mid - minSpan / 2, mid + minSpan / 2];
      if (options.clamp) [yLo, yHi] = [Math.max(yLo, options.clamp[0]), Math.min(yHi, options.clamp[1])];
    }
    const margin = (yHi - yLo) * 0.05;
    yLo -= margin; yHi += margin;
  }
  const px = (x) => PAD.left + (x / xMax) * (w - PAD.left - PAD.right);
  const py = (y) => h - PAD.bottom - ((y - yLo) / (yHi - yLo)) * (h - PAD.top - PAD.bottom);

  // -- grid and labels --
  ctx.strokeStyle = grid;
  ctx.fillStyle = ink;
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  const yTicks = options.log ? logTicks(yLo, yHi) : ticks(yLo, yHi, 4);
  for (const t of yTicks) {
    const y = py(t);
    ctx.beginPath(); ctx.moveTo(PAD.left, y); ctx.lineTo(w - PAD.right, y); ctx.stroke();
    const value = options.log ? 10 ** t : t;
    ctx.fillText(options.format ? options.format(value) : String(value), PAD.left - 6, y);
  }
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of ticks(0, xMax, 5).filter(Number.isInteger)) {
    const x = px(t);
    ctx.beginPath(); ctx.moveTo(x, PAD.top); ctx.lineTo(x, h - PAD.bottom); ctx.stroke();
    ctx.fillText(formatStep(t), x, h - PAD.bottom + 6);
  }

  // -- the curves --
  ctx.save();
  ctx.beginPath();
  ctx.rect(PAD.left, PAD.top, w - PAD.left - PAD.right, h - PAD.top - PAD.bottom);
  ctx.clip();
  ctx.lineWidth = 1.8;
  ctx.lineJoin = "round";
  for (const s of usable) {
    if (!s.points.length) continue;
    ctx.strokeStyle = s.colour;
    ctx.fillStyle = s.colour;
    ctx.setLineDash(s.dash ?? []);
    ctx.beginPath();
    s.points.forEach(([x, v], i) => (i ? ctx.lineTo(px(x), py(transform(v))) : ctx.moveTo(px(x), py(transform(v)))));
    ctx.stroke();
    ctx.setLineDash([]);
    const [lx, lv] = s.points[s.points.length - 1];
    ctx.beginPath(); ctx.arc(px(lx), py(transform(lv)), 2.5, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.restore();
}

// A heatmap growing with the steps: columns [[step, [v0, v1, ...]], ...] (rows bottom to top, values in [0, 1]),
// coloured through `stops` (CSS colours, low to high); missing values are left grey.
export function drawHeatmap(canvas, columns, stops, options = {}) {
  const drawn = blank(canvas);
  if (!drawn) return;
  const { ctx, w, h } = drawn;
  const ink = getComputedStyle(canvas).getPropertyValue("--chart-ink") || "#555";
  ctx.fillStyle = ink;
  if (!columns.length) {
    ctx.textAlign = "center";
    ctx.fillText(options.empty ?? "no data yet", w / 2, h / 2);
    return;
  }
  const rows = Math.max(...columns.map(([, v]) => v.length));
  const left = PAD.left, right = w - PAD.right, top = PAD.top, bottom = h - PAD.bottom;
  const xMax = Math.max(10, columns[columns.length - 1][0]);
  const px = (x) => left + (x / xMax) * (right - left);
  const rowH = (bottom - top) / rows;
  const colour = (v) => {
    const t = Math.min(1, Math.max(0, v)) * (stops.length - 1);
    return stops[Math.round(t)];
  };
  columns.forEach(([step, values], i) => {
    const x0 = i ? px((columns[i - 1][0] + step) / 2) : px(step);
    const x1 = i < columns.length - 1 ? px((step + columns[i + 1][0]) / 2) : Math.max(px(step), x0 + 2);
    values.forEach((v, r) => {
      ctx.fillStyle = v === null || !Number.isFinite(v) ? "#e5e7eb" : colour(v);
      ctx.fillRect(x0, bottom - (r + 1) * rowH, Math.max(1, x1 - x0 + 0.5), rowH + 0.5);
    });
  });
  ctx.fillStyle = ink;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  ctx.fillText(options.low ?? "low", left - 6, bottom - rowH / 2);
  ctx.fillText(options.high ?? "high", left - 6, top + rowH / 2);
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of ticks(0, xMax, 5).filter(Number.isInteger)) ctx.fillText(formatStep(t), px(t), bottom + 6);
}
