"""The network view as a picture: each hidden layer a block of small tiles, one per unit, each tile that unit's
activation over the whole picture; dead units framed in red, saturated ones in orange.

    view = network_view(run_folder, step=None)      # the model at its latest stored weights (or the nearest at or before `step`;
    save_png(view.picture(), "net.png")             #  `loading.load_run_model(..., stored=True)`)

Colours: each layer on one diverging scale centred on 0 (blue negative, white 0, red
positive), so a dead ReLU unit is a blank tile and units can be compared within a layer.
The dead and saturated marks are the unit-level statistics of `diagnostics` over the
whole low-resolution grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from .activations import ACTIVATIONS
from .fonts import font
from .loading import load_run_model
from .runs import RunFolder

TILES_PER_ROW = 16
DEAD, SATURATED = (220, 30, 30), (245, 150, 0)


@dataclass
class NetworkView:
    """Per hidden layer: unit maps (units, h, w), the activation's name, and per-unit dead / saturated flags."""

    step: int
    maps: list[np.ndarray]
    activations: list[str]
    title: str = ""

    def flags(self, layer: int) -> tuple[np.ndarray, np.ndarray]:
        """(dead, saturated) boolean per unit of hidden layer `layer` (0-based), over the whole grid."""
        import torch

        from .diagnostics import unit_states

        units = self.maps[layer].shape[0]
        states = unit_states(self.activations[layer], torch.from_numpy(self.maps[layer].reshape(units, -1)).T)
        dead, saturated = (np.zeros(units, bool) if s is None else s.numpy() for s in states)
        return dead, saturated

    def picture(self, tile_width: int = 64) -> np.ndarray:
        """The view as an (H, W, 3) uint8 picture."""
        return draw(self, tile_width)


def _colours(values: np.ndarray) -> np.ndarray:
    """Values on the layer's symmetric scale -> (..., 3) uint8, blue-white-red."""
    import matplotlib

    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)  # a diverged run's weights: drawn blank
    scale = float(np.percentile(np.abs(values), 99.5)) or 1.0
    lut = (matplotlib.colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3] * 255).astype(np.uint8)
    index = np.clip(np.round((values / scale + 1) * 127.5), 0, 255).astype(np.intp)
    return lut[index]


def draw(view: NetworkView, tile_width: int = 64) -> np.ndarray:
    """Each layer a labelled block of TILES_PER_ROW tiles per row; dead units in a red frame, saturated in orange."""
    units_h, units_w = view.maps[0].shape[1:]
    tw = tile_width
    th = max(2, round(tw * units_h / units_w))
    gap, label_h, margin = 3, 22, 10
    per_row = min(TILES_PER_ROW, max(m.shape[0] for m in view.maps))
    width = margin * 2 + per_row * (tw + gap)
    blocks = [(layer, -(-m.shape[0] // per_row)) for layer, m in enumerate(view.maps)]
    height = margin + (label_h if view.title else 0) + sum(label_h + rows * (th + gap) + margin for _, rows in blocks)
    canvas = Image.new("RGB", (width, height), "white")
    pen = ImageDraw.Draw(canvas)
    text = font(14)
    y = margin
    if view.title:
        pen.text((margin, y), view.title, fill="black", font=font(15, bold=True))
        y += label_h
    for layer, rows in blocks:
        maps = view.maps[layer]
        dead, saturated = view.flags(layer)
        note = [f"layer {layer + 1}: {maps.shape[0]} {view.activations[layer]} units"]
        if ACTIVATIONS[view.activations[layer]].dead is not None:
            note.append(f"{int(dead.sum())} dead")
        if ACTIVATIONS[view.activations[layer]].saturated is not None:
            note.append(f"{int(saturated.sum())} saturated")
        pen.text((margin, y + 3), ", ".join(note), fill="black", font=text)
        y += label_h
        tiles = _colours(maps)
        for u in range(maps.shape[0]):
            x0, y0 = margin + (u % per_row) * (tw + gap), y + (u // per_row) * (th + gap)
            tile = Image.fromarray(tiles[u]).resize((tw, th), Image.BILINEAR)
            canvas.paste(tile, (x0, y0))
            if dead[u] or saturated[u]:
                pen.rectangle((x0 - 1, y0 - 1, x0 + tw, y0 + th), outline=DEAD if dead[u] else SATURATED, width=2)
        y += rows * (th + gap) + margin
    return np.asarray(canvas)


def network_view(run: str | Path, step: int | None = None, long_side: int = 64) -> NetworkView:
    """The network view of the run folder `run` at the stored weights nearest at or before `step` (default: the latest)."""
    from .diagnostics import hidden_layers, unit_maps

    folder = RunFolder.open(run)
    loaded = load_run_model(folder, stored=True, step=step)
    names = [layer.name for _, _, layer in hidden_layers(loaded.model)]
    title = f"{folder.path.name}  step {loaded.step:,}"
    return NetworkView(loaded.step, unit_maps(loaded.model, loaded.height, loaded.width, long_side), names, title)


def describe(view: NetworkView) -> list[dict[str, Any]]:
    """Per hidden layer: units, dead and saturated counts over the grid (for reports and the lab)."""
    out = []
    for layer, maps in enumerate(view.maps):
        dead, saturated = view.flags(layer)
        out.append({"layer": layer + 1, "units": int(maps.shape[0]), "dead": int(dead.sum()), "saturated": int(saturated.sum())})
    return out
