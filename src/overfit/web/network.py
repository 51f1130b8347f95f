"""The network view for the page: each hidden unit's picture at a stored evaluation, and one unit in detail.

    GET /api/runs/{id}/network?step=N              per hidden layer: tiles (uint8, base64), scale, dead/saturated flags
    GET /api/runs/{id}/network/unit?layer=L&unit=U&step=N   one unit's picture, larger, and its incoming weights
    GET /api/runs/{id}/batch?n=1024                the run's preview batch (samples.png's points): (y, x, label)

Everything is read from the run folder (the weights the recorder keeps at evaluations,
`RunFolder.weight_steps`), never from the model a training process holds: a request
costs the training a read and a small forward pass on another thread, nothing more.
The step shown is the last stored one at or before the step asked for (`loading.nearest_step`); the model
comes from `loading.load_run_model`, the one way a model leaves a run folder.

Tiles are quantized as `netview` colours them: per layer one symmetric scale (the 99.5th
percentile of |activation|), value = (byte / 127.5 - 1) * scale, so byte 127.5 is 0; the
page maps bytes through the blue-white-red table served in /api/meta (`diverging`).
Views are kept in a small cache by (folder, step, file time): the weights of a step
never change once written, so scrubbing back and several viewers cost one computation.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..loading import load_run_model, nearest_step, run_preview_batch
from ..netview import NetworkView
from .errors import LabError
from .labrun import LabRun

# The long side of a tile, in grid points: small enough that 4 layers of 256 units are ~300 kB to send.
TILE_SIDE = 32
MAX_TILE_SIDE = 64
# The long side of one unit's large picture.
UNIT_SIDE = 160
# Views kept (each a few hundred kB).
CACHE_VIEWS = 16
# Points of the training-batch scatter, at most.
MAX_BATCH_POINTS = 4096


def diverging_table() -> list[str]:
    """The 256 colours of the tiles' scale (`netview`'s RdBu_r), as '#rrggbb', for /api/meta."""
    import matplotlib

    lut = (matplotlib.colormaps["RdBu_r"](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(int)
    return ["#%02x%02x%02x" % tuple(c) for c in lut]


def quantize(maps: np.ndarray) -> tuple[bytes, float]:
    """(units, h, w) activations -> (uint8 bytes, scale) on the layer's symmetric scale, as `netview` colours them."""
    scale = float(np.percentile(np.abs(maps), 99.5)) if maps.size else 0.0
    scale = scale if np.isfinite(scale) and scale > 0 else 1.0
    q = np.clip(np.round((maps / scale + 1) * 127.5), 0, 255).astype(np.uint8)
    return q.tobytes(), scale


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Cache:
    """A few recent results by key, least recently used dropped; safe from any thread."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)


_views = _Cache(CACHE_VIEWS)


def stored_step(run: LabRun, step: int | None) -> int:
    """The stored evaluation at or before `step` (the latest for None); LabError 404 saying why there is none."""
    from ..errors import RunFolderError

    try:
        steps = run.folder.weight_steps()
    except RunFolderError as e:  # weights/ is a link, or not a folder: never listed
        raise LabError(409, f"run {run.id}: {_why(run, e)}") from None
    at = nearest_step(steps, step)
    if at is not None:
        return at
    if steps:
        raise LabError(404, f"run {run.id} has no stored weights at or before step {step:,} (the first is at step {steps[0]:,})",
                       field="step")
    raise LabError(404, f"run {run.id} has no stored weights yet (they are kept at evaluations; models above a million "
                        "parameters keep none)", field="step")


def _why(run: LabRun, e: Exception) -> str:
    """A refusal's reason for the page: the run's folder named as such, never by its server path."""
    return str(e).replace(str(run.path), "the run's folder")


def _key(run: LabRun, at: int, side: int) -> tuple[Any, ...]:
    path = run.folder.weights_path(at)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        raise LabError(404, f"run {run.id} has no stored weights at step {at:,} any more", field="step") from None
    return (str(Path(run.path)), at, side, stamp)


def _view(run: LabRun, at: int, side: int) -> NetworkView:
    from ..errors import RunFolderError
    from ..netview import network_view

    key = _key(run, at, side)
    view = _views.get(key)
    if view is None:
        try:
            view = network_view(run.path, at, long_side=side)
        except RunFolderError as e:
            raise LabError(404, f"run {run.id}: the weights at step {at:,} cannot be read ({_why(run, e)})", field="step") from None
        _views.put(key, view)
    return view


def network(run: LabRun, step: int | None, side: int = TILE_SIDE) -> dict[str, Any]:
    """The /network payload: per hidden layer its tiles and flags at the stored step at or before `step`."""
    if not 4 <= side <= MAX_TILE_SIDE:
        raise LabError(422, f"size must be between 4 and {MAX_TILE_SIDE} grid points, not {side}", field="size")
    at = stored_step(run, step)
    view = _view(run, at, side)
    layers = []
    for i, maps in enumerate(view.maps):
        data, scale = quantize(maps)
        dead, saturated = view.flags(i)
        layers.append({
            "layer": str(i + 1), "activation": view.activations[i], "units": int(maps.shape[0]),
            "scale": scale, "tiles": _b64(data),
            "dead": [bool(d) for d in dead], "saturated": [bool(s) for s in saturated],
        })
    h, w = view.maps[0].shape[1:] if view.maps else (0, 0)
    return {"run": run.id, "step": at, "requested": step, "height": int(h), "width": int(w),
            "steps": run.folder.weight_steps(), "layers": layers}


def _model_at(run: LabRun, at: int) -> Any:
    from ..errors import RunFolderError

    try:
        return load_run_model(run.folder, stored=True, step=at).model
    except RunFolderError as e:
        raise LabError(404, f"run {run.id}: the weights at step {at:,} cannot be read ({_why(run, e)})", field="step") from None


def unit(run: LabRun, layer: int, index: int, step: int | None) -> dict[str, Any]:
    """The /network/unit payload: hidden layer `layer` (1-based), unit `index` (0-based): a larger picture and its weights."""
    from ..diagnostics import hidden_layers, layer_weights, linears

    at = stored_step(run, step)
    model = _model_at(run, at)
    hidden = hidden_layers(model)
    if not 1 <= layer <= len(hidden):
        raise LabError(422, f"layer must be between 1 and {len(hidden)} (the hidden layers), not {layer}", field="layer")
    units = linears(model)[layer - 1].out_features
    if not 0 <= index < units:
        raise LabError(422, f"unit must be between 0 and {units - 1} (layer {layer} has {units} units), not {index}", field="unit")
    view = _view(run, at, UNIT_SIDE)
    maps = view.maps[layer - 1]
    # On the scale of the whole layer, as its tile: units stay comparable.
    _, layer_scale = quantize(maps)
    data = np.clip(np.round((maps[index] / layer_scale + 1) * 127.5), 0, 255).astype(np.uint8).tobytes()
    dead, saturated = view.flags(layer - 1)
    weights = layer_weights(model, layer)[index]
    bias = linears(model)[layer - 1].bias.detach() if linears(model)[layer - 1].bias is not None else None
    inputs = "encoded inputs" if layer == 1 else f"units of layer {layer - 1}"
    return {
        "run": run.id, "step": at, "layer": str(layer), "unit": index, "activation": view.activations[layer - 1],
        "height": int(maps.shape[1]), "width": int(maps.shape[2]), "scale": layer_scale, "tile": _b64(data),
        "min": float(maps[index].min()), "max": float(maps[index].max()),
        "dead": bool(dead[index]), "saturated": bool(saturated[index]),
        "weights": [float(w) for w in weights], "bias": float(bias[index]) if bias is not None else None, "inputs": inputs,
    }


def batch(run: LabRun, n: int) -> dict[str, Any]:
    """The first `n` points of the run's preview batch (all of them if it has fewer): (y, x) in pixels (row 0 at the top), labels or values.

    The batch samples.png shows (`loading.run_preview_batch`): drawn from the run's training
    pixels only (its held-out split) with its own preview stream, as training draws.
    """
    from ..errors import RunFolderError

    if not 1 <= n <= MAX_BATCH_POINTS:
        raise LabError(422, f"n must be between 1 and {MAX_BATCH_POINTS}, not {n}", field="n")
    try:
        cfg = run.folder.config()
        target = run.folder.target()
    except RunFolderError:
        raise LabError(404, f"run {run.id}: its config or target picture cannot be read") from None
    yx, labels = run_preview_batch(cfg, target)
    return {"run": run.id, "height": target.height, "width": target.width,
            "yx": yx[:n].round(2).tolist(), "labels": labels[:n].round(3).tolist()}
