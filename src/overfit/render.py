"""Rendering: evaluate a fitted network on any grid, at any resolution, in bounded memory.

A fitted network is a continuous function of (y, x), so it can be drawn larger,
smaller or zoomed into a region. `predict` samples it at the centres of an
out_h x out_w grid of output pixels covering a region given in the run's own
coordinates (see `coords`: x from the left, y from the bottom, pixel units, pixel
(row, col) of the picture covering [y - 0.5, y + 0.5] around its centre). The
default region is the whole picture, so at its own size the samples fall exactly
on the pixel centres the network was trained on.

This module knows networks and pictures, not where a network comes from (`loading`)
or how it is evaluated fast (`inference`): `predict` takes any callable with the
model's signature. Errors name the parameter at fault in `RenderError.field`.
"""

from __future__ import annotations

import math

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from .coords import region_grid
from .errors import RenderError
from .limits import most
from .images import save_png as _write_png
from .images import to_uint8
from .modes import get_mode

# Output pixels per forward pass: small enough that activations stay in cache (see metrics.DENSE_CHUNK).
RENDER_CHUNK = 1 << 12
# Largest picture `render` will draw, in pixels (`limits`: a 16-megapixel render must work; this is 16x that).
MAX_RENDER_PIXELS = most("render_pixels")
# Bytes a render holds at once per output value (pixel x channel): the float32 result of `predict` (4),
# `images.to_uint8`'s float64 copy and its temporaries (up to 4 x 8 at once), the uint8 picture and
# PIL's copy of it while the PNG is encoded (2), rounded up.
RENDER_BYTES_PER_VALUE = 40

RENDER_MODES = ("probability", "class")

__all__ = ["MAX_RENDER_PIXELS", "RENDER_BYTES_PER_VALUE", "RENDER_CHUNK", "RENDER_MODES", "Region", "RenderError", "check_output", "check_render_mode",
           "output_size", "predict", "render_image", "render_memory", "save_png"]


@dataclass(frozen=True)
class Region:
    """A rectangle in the run's coordinates: y0 < y1 (bottom to top), x0 < x1 (left to right), pixel units."""

    y0: float
    y1: float
    x0: float
    x1: float

    @classmethod
    def whole(cls, height: int, width: int) -> Region:
        """The picture's full extent: pixel centres 0..H-1 plus half a pixel on each side."""
        return cls(-0.5, height - 0.5, -0.5, width - 0.5)

    def check(self) -> None:
        """Refuse a region that is not finite or not a proper rectangle (`field` "region")."""
        values = (self.y0, self.y1, self.x0, self.x1)
        if not all(np.isfinite(v) for v in values):
            raise RenderError(f"values must be finite numbers, got {values}", field="region")
        if not (self.y1 > self.y0 and self.x1 > self.x0):
            raise RenderError(f"needs y0 < y1 and x0 < x1, got y {self.y0}..{self.y1}, x {self.x0}..{self.x1}", field="region")

    def grid(self, out_h: int, out_w: int, start: int = 0, end: int | None = None,
             device: torch.device | str = "cpu") -> torch.Tensor:
        """Coordinates (n, 2) of output pixel centres [start, end) in row-major order, row 0 on top (`coords.region_grid`)."""
        return region_grid(self.y0, self.y1, self.x0, self.x1, out_h, out_w, start, end, device)


@torch.inference_mode()
def predict(
    model: Callable[[torch.Tensor], torch.Tensor],
    mode: str,
    out_h: int,
    out_w: int,
    region: Region,
    device: torch.device | str = "cpu",
    chunk: int = RENDER_CHUNK,
) -> np.ndarray:
    """The network sampled on an out_h x out_w grid over `region`, values in [0, 1].

    `model` is the network or any callable with its signature ((n, 2) -> (n, C) outputs,
    such as an `inference` backend); `mode` is the run's data.mode, whose output head
    (`Mode.display`) turns outputs into values. Binary runs give P(background)
    (out_h, out_w), so ink is dark as in the picture; gray runs (out_h, out_w); rgb runs
    (out_h, out_w, 3). Memory beyond the result is one chunk of coordinates and activations.
    """
    head = get_mode(mode)
    channels = head.picture_channels
    result = torch.empty(out_h * out_w, channels, dtype=torch.float32)
    for start in range(0, out_h * out_w, chunk):
        yx = region.grid(out_h, out_w, start, start + chunk, device)
        result[start:start + yx.shape[0]] = head.display(model(yx)).cpu()
    array = result.numpy()
    return array.reshape(out_h, out_w) if channels == 1 else array.reshape(out_h, out_w, channels)


def output_size(height: int, width: int, region: Region, scale: float | None, out_width: int | None,
                out_height: int | None, mode: str | None = None, budget: int | None = None) -> tuple[int, int]:
    """(out_h, out_w) of a render: explicit sizes, or the region's size in pixels times `scale`.

    Given only one of width and height, the other keeps the region's aspect ratio.
    With `mode` (the run's data.mode) the render's memory (`render_memory`) is checked too,
    against `budget` bytes (None: `budget.default_budget()`, half the available memory).
    A refusal names the parameter that decided the size: `scale`, `width` or `height`.
    """
    if scale is not None and (out_width is not None or out_height is not None):
        raise RenderError("give either scale or width/height, not both", field="scale")
    region_h, region_w = region.y1 - region.y0, region.x1 - region.x0
    if out_width is None and out_height is None:
        scale = 1.0 if scale is None else scale
        if not (np.isfinite(scale) and scale > 0):
            raise RenderError(f"must be a positive number, got {scale}", field="scale")
        size_h, size_w = region_h * scale, region_w * scale
        field = "scale"
    elif out_width is None:
        size_h, size_w = out_height, out_height * region_w / region_h  # type: ignore[operator]
        field = "height"
    elif out_height is None:
        size_h, size_w = out_width * region_h / region_w, out_width
        field = "width"
    else:
        size_h, size_w = out_height, out_width
        field = "width" if out_width < 1 else "height"
    # Sizes as real numbers first: a huge scale or region makes them infinite, which no integer holds.
    if not (math.isfinite(size_h) and math.isfinite(size_w)) or size_h * size_w > 4 * MAX_RENDER_PIXELS:
        raise RenderError(f"a {size_w:.3g} x {size_h:.3g} render is larger than the limit of {MAX_RENDER_PIXELS:,} pixels",
                          field=field)
    out_h, out_w = round(size_h), round(size_w)
    if out_h < 1 or out_w < 1:
        raise RenderError(f"the render would be {out_w} x {out_h} pixels; it needs at least 1 x 1", field=field)
    if out_h * out_w > MAX_RENDER_PIXELS:
        raise RenderError(f"a {out_w} x {out_h} render is larger than the limit of {MAX_RENDER_PIXELS:,} pixels", field=field)
    if mode is not None:
        from .budget import MEMORY_SHARE_WORDS, default_budget, format_bytes

        need, limit = render_memory(out_h, out_w, mode), default_budget() if budget is None else budget
        if need > limit:
            words = MEMORY_SHARE_WORDS if budget is None else "the budget given"
            raise RenderError(f"a {out_w} x {out_h} render needs ~{format_bytes(need)} of memory, more than "
                              f"{format_bytes(limit)} ({words}); render a smaller size, or the region in parts", field=field)
    return int(out_h), int(out_w)


def render_memory(out_h: int, out_w: int, mode: str) -> int:
    """Bytes an out_h x out_w render of a run of data.mode `mode` holds at once, beyond the network."""
    return out_h * out_w * get_mode(mode).picture_channels * RENDER_BYTES_PER_VALUE


def check_render_mode(mode: str, render_mode: str) -> None:
    """Refuse a render mode that does not fit a run of data.mode `mode` (before any rendering); `field` "mode"."""
    if render_mode not in RENDER_MODES:
        raise RenderError(f"unknown render mode {render_mode!r}; choose from {', '.join(RENDER_MODES)}", field="mode")
    if render_mode == "class" and not get_mode(mode).classes:
        raise RenderError(f"'class' is for runs that fit classes, such as binary; this run fits {mode} pixel values", field="mode")


def render_image(values: np.ndarray, mode: str, render_mode: str = "probability") -> np.ndarray:
    """Values from `predict` -> uint8 picture; for binary, 'class' gives pure black and white."""
    check_render_mode(mode, render_mode)
    if render_mode == "class":
        return np.where(values > 0.5, 255, 0).astype(np.uint8)
    return to_uint8(values)


def check_output(path: str | os.PathLike) -> None:
    """Refuse an output path `save_png` cannot write, before any rendering: not .png, or its folder missing."""
    path = Path(path)
    if not str(path).lower().endswith(".png"):
        raise RenderError(f"{path} must end in .png", field="output")
    if not path.parent.is_dir():
        raise RenderError(f"folder {path.parent} does not exist", field="output")


def save_png(picture: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 (H, W) or (H, W, 3) picture as PNG, atomically; `field` "output" when it cannot be written."""
    path = Path(path)
    if not path.parent.is_dir():
        raise RenderError(f"folder {path.parent} does not exist", field="output")
    try:
        _write_png(picture, path)
    except OSError as e:
        raise RenderError(f"cannot write {path}: {e.strerror or e}", field="output") from None
