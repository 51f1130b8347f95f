// The network view: each hidden layer a block of small tiles, one per unit, each that unit's
// activation over the whole picture at one stored evaluation (GET /api/runs/{id}/network).
// Tiles arrive as bytes on the layer's symmetric scale (127.5 = 0) and are coloured here with
// the blue-white-red table of /api/meta (`diverging`): blue negative, white 0, red positive.
// Dead units are framed red, saturated ones orange. Clicking a tile shows it large with its
// incoming weights (GET .../network/unit). It reads the state's `network` part and calls the
// handlers; it never fetches by itself.

import { $, el } from "./dom.js";

// "#rrggbb" strings -> a (256 * 3) byte table.
export function colourTable(hexes) {
  const table = new Uint8Array(256 * 3);
  hexes.forEach((h, i) => {
    for (let c = 0; c < 3; c++) table[i * 3 + c] = Number.parseInt(h.slice(1 + 2 * c, 3 + 2 * c), 16);
  });
  return table;
}

export function decodeBytes(b64) {
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

// Paint `count` bytes starting at `offset` of `bytes` (a h x w tile) on `canvas` through `table`.
export function paintTile(canvas, bytes, offset, width, height, table) {
  if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
  const image = new ImageData(width, height);
  const px = image.data;
  for (let i = 0; i < width * height; i++) {
    const v = bytes[offset + i] * 3;
    px[4 * i] = table[v]; px[4 * i + 1] = table[v + 1]; px[4 * i + 2] = table[v + 2]; px[4 * i + 3] = 255;
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
}

export class NetworkPanel {
  constructor(handlers) {
    this.h = handlers;
    this.blocks = [];  // per layer: {root, note, grid, tiles: [canvas]}
    this.table = null;
  }

  render(state) {
    const net = state.network;
    if (!this.table) this.table = colourTable(state.meta.diverging);
    const note = $("#network-note");
    const root = $("#network-layers");
    if (!net.data) {
      note.textContent = net.error ?? (net.loading ? "loading…" : "select a run that has trained");
      root.replaceChildren();
      delete root.dataset.step;
      this.blocks = [];
      $("#network-unit").replaceChildren();
      return;
    }
    const d = net.data;
    root.dataset.step = d.step;
    note.textContent = `${d.run} · step ${d.step.toLocaleString("en")}` + (d.requested !== null && d.requested !== d.step ? ` (the stored weights at or before step ${d.requested.toLocaleString("en")})` : "")
      + (net.error ? ` · ${net.error}` : "");
    while (this.blocks.length > d.layers.length) this.blocks.pop().root.remove();
    d.layers.forEach((layer, li) => {
      let block = this.blocks[li];
      if (!block) {
        block = { note: el("div", { class: "net-layer-note" }), grid: el("div", { class: "net-grid" }), tiles: [] };
        block.root = el("section", { class: "net-layer" }, block.note, block.grid);
        root.append(block.root);
        this.blocks[li] = block;
      }
      block.root.dataset.layer = layer.layer;
      while (block.tiles.length > layer.units) block.tiles.pop().remove();
      while (block.tiles.length < layer.units) {
        const u = block.tiles.length;
        const tile = el("canvas", { class: "net-tile", width: 1, height: 1, tabindex: 0 });
        tile.addEventListener("click", () => this.h.networkUnit(Number(block.root.dataset.layer), u));
        tile.addEventListener("keydown", (e) => { if (e.key === "Enter") this.h.networkUnit(Number(block.root.dataset.layer), u); });
        block.grid.append(tile);
        block.tiles.push(tile);
      }
      const dead = layer.dead.filter(Boolean).length, saturated = layer.saturated.filter(Boolean).length;
      block.note.textContent = `layer ${layer.layer}: ${layer.units} ${layer.activation} units · ${dead} dead · ${saturated} saturated · scale ±${+layer.scale.toPrecision(3)}`;
      const bytes = decodeBytes(layer.tiles);
      const size = d.width * d.height;
      block.tiles.forEach((tile, u) => {
        paintTile(tile, bytes, u * size, d.width, d.height, this.table);
        tile.classList.toggle("dead", layer.dead[u]);
        tile.classList.toggle("saturated", !layer.dead[u] && layer.saturated[u]);
        tile.classList.toggle("chosen", net.unit?.layer === layer.layer && net.unit?.unit === u);
        tile.title = `layer ${layer.layer}, unit ${u}${layer.dead[u] ? " (dead)" : layer.saturated[u] ? " (saturated)" : ""}`;
      });
    });
    this.renderUnit(state);
  }

  renderUnit(state) {
    const u = state.network.unit;
    const root = $("#network-unit");
    if (!u || !u.data) { root.replaceChildren(...(u?.error ? [el("p", { class: "panel-error", text: u.error })] : [])); return; }
    const d = u.data;
    const big = el("canvas", { class: "net-unit-picture", width: 1, height: 1 });
    paintTile(big, decodeBytes(d.tile), 0, d.width, d.height, this.table);
    big.style.aspectRatio = `${d.width} / ${d.height}`;
    const bars = el("canvas", { class: "net-weights" });
    const state_ = d.dead ? "dead" : d.saturated ? "saturated" : "";
    root.replaceChildren(el("div", { class: "net-unit" },
      el("figure", {}, big, el("figcaption", { text: `layer ${d.layer}, unit ${d.unit} (${d.activation}${state_ ? ", " + state_ : ""}) · step ${d.step.toLocaleString("en")} · from ${d.min.toPrecision(3)} to ${d.max.toPrecision(3)}` })),
      el("figure", {}, bars, el("figcaption", { text: `${d.weights.length} incoming weights from the ${d.inputs}` + (d.bias !== null ? ` · bias ${d.bias.toPrecision(3)}` : "") }))));
    requestAnimationFrame(() => drawBars(bars, d.weights));
  }
}

// The weights as bars around a zero line: red positive, blue negative.
export function drawBars(canvas, weights) {
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth || 300, h = canvas.clientHeight || 120;
  canvas.width = Math.round(w * dpr); canvas.height = Math.round(h * dpr);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  const top = Math.max(1e-12, ...weights.map(Math.abs));
  const bw = w / weights.length, mid = h / 2;
  ctx.strokeStyle = "#bbb"; ctx.beginPath(); ctx.moveTo(0, mid); ctx.lineTo(w, mid); ctx.stroke();
  weights.forEach((v, i) => {
    ctx.fillStyle = v >= 0 ? "#c0392b" : "#2c6fbb";
    const len = (Math.abs(v) / top) * (mid - 2);
    ctx.fillRect(i * bw + (bw > 3 ? 0.5 : 0), v >= 0 ? mid - len : mid, Math.max(1, bw - (bw > 3 ? 1 : 0)), len);
  });
  ctx.fillStyle = "#6b7280"; ctx.font = "10px system-ui, sans-serif"; ctx.fillText(`±${top.toPrecision(3)}`, 2, 10);
}
