"""What a training run shows live: its curves (thinned as they grow) and its preview pictures.

Curves are (step, value) points, halved past `MAX_CURVE_POINTS` so a long run stays
light to send and to draw; the page thins its own copy the same way (the limit is
served in /api/meta). A preview is the network drawn small, in the run's training process
(the only thread that touches a model), sized and paced so that drawing it takes
about `PREVIEW_SHARE` of the run's time at `PREVIEW_FPS` pictures a second.
"""

from __future__ import annotations

import base64
import math
import time
from typing import Any

from .. import metricinfo
from ..modes import Mode, get_mode
from . import pictures

# Points kept per curve; beyond this every other point is dropped (the curve keeps its shape).
MAX_CURVE_POINTS = 4000
# Previews per second per run, and the share of the run's time they may take. The preview's
# size follows from both: drawing costs ~0.85 us per pixel for relu_1 on 2 cores (so ~12k pixels,
# 200 x 60 for OVERFIT) and ~8x that for siren's wider layers (so a coarser picture, still live).
# If drawing is still too slow (a busy machine), previews come less often instead.
PREVIEW_FPS = 10.0
PREVIEW_SHARE = 0.1
# Chunk boundaries come every ~1/PREVIEW_FPS s with some jitter; waiting a full interval between
# ticks would skip every other one and halve the rate.
TICK_SECONDS = 0.75 / PREVIEW_FPS


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class Curve:
    """(step, value) points, thinned by halves past MAX_CURVE_POINTS so a long run stays light."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []
        self.stride = 1  # keep every stride-th point offered
        self._offered = 0

    def add(self, step: int, value: Any) -> None:
        if not self.keeps(value):
            return
        self._offered += 1
        if (self._offered - 1) % self.stride:
            return
        self.points.append((int(step), self.value(value)))
        if len(self.points) > MAX_CURVE_POINTS:
            self.points = self.points[::2]
            self.stride *= 2

    def keeps(self, value: Any) -> bool:
        return finite(value)

    def value(self, value: Any) -> Any:
        return float(value)


# What the page charts of each layer, in this order (see `diagnostics.layer_record`).
LAYER_KEYS = ("dead", "pre_std", "grad_norm", "update_ratio")


def inside(record: dict[str, Any]) -> dict[str, Any] | None:
    """An evaluation record's view inside the network, compact: per layer the LAYER_KEYS values, and the band errors."""
    layers = record.get("layers")
    if not layers:
        return None
    return {"layers": {str(layer.get("layer")): [layer.get(k) if finite(layer.get(k)) else None for k in LAYER_KEYS]
                       for layer in layers},
            "bands": [b if finite(b) else None for b in record.get("bands") or []]}


class Inside(Curve):
    """Per evaluation, what happens inside the network (`inside`), thinned as a curve is."""

    def keeps(self, value: Any) -> bool:
        return isinstance(value, dict)

    def value(self, value: Any) -> Any:
        return value


# The curves of a run, by the name the page knows them by: the training loss ("loss", from each log),
# and from each evaluation every metric the record holds, by its key (`dense_acc`, `fit_psnr`, ...:
# whatever the metric registry knows), so the page can chart any of them.
LOSS = "loss"


class Curves(dict):
    """A run's curves by name; a name seen for the first time starts an empty curve."""

    def __missing__(self, name: str) -> Curve:
        curve = self[name] = Curve()
        return curve


def eval_values(record: dict[str, Any], mode: Mode | None = None) -> dict[str, Any]:
    """An evaluation record's points, by key: every value of a metric the registry knows (`mode` is not needed)."""
    return {key: value for key, value in record.items() if metricinfo.known(key) and finite(value)}


def new_curves() -> Curves:
    """No curves yet; "loss" is always there (empty until the first log)."""
    curves = Curves()
    curves[LOSS] = Curve()
    return curves


def curves_from(records: list[dict[str, Any]], mode: Mode | None = None) -> Curves:
    """The curves of a run's evaluation records: "loss" and one per metric key the records hold."""
    curves = new_curves()
    for r in records:
        step = r.get("step", 0)
        curves[LOSS].add(step, r.get("train_loss"))
        for name, value in eval_values(r).items():
            curves[name].add(step, value)
    return curves


def inside_from(records: list[dict[str, Any]]) -> Inside:
    """The inside-the-network curve of a run's evaluation records."""
    diag = Inside()
    for r in records:
        diag.add(r.get("step", 0), inside(r))
    return diag


class Previews:
    """Draws one run's previews: when one is due, and at what size (adapted to what drawing costs)."""

    def __init__(self) -> None:
        self.next_at = 0.0
        self.pixels = float(pictures.PREVIEW_PIXELS)

    def due(self, now: float) -> bool:
        return now >= self.next_at

    def draw(self, trainer: Any) -> dict[str, Any]:
        """The network drawn small now, as a "preview" message; call it where the model trains (its process)."""
        from ..render import Region, predict

        started = time.perf_counter()
        h, w = trainer.target.height, trainer.target.width
        ph, pw = pictures.preview_size(h, w, round(self.pixels))
        model = trainer.model
        model.eval()  # BatchNorm: use the running statistics, do not update them
        try:
            values = predict(model, trainer.cfg.data.mode, ph, pw, Region.whole(h, w), device=trainer.device)
        finally:
            model.train()
        data = pictures.png(pictures.show(values, get_mode(trainer.cfg.data.mode)))
        cost = time.perf_counter() - started
        self.next_at = started + max(TICK_SECONDS, cost / PREVIEW_SHARE)
        # Size the next preview to fit its time budget (smoothed: one slow draw does not halve it).
        fits = PREVIEW_SHARE / PREVIEW_FPS / max(cost / (ph * pw), 1e-9)
        fits = min(max(fits, pictures.MIN_PREVIEW_PIXELS), pictures.MAX_PREVIEW_PIXELS)
        self.pixels = 0.7 * self.pixels + 0.3 * fits
        return {"type": "preview", "step": trainer.step, "width": pw, "height": ph, "png": base64.b64encode(data).decode("ascii")}
