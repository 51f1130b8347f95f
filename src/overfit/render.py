"""Rendering: evaluate a fitted network on any grid, at any resolution, in bounded memory.

A fitted network is a continuous function of (y, x), so it can be drawn larger,
smaller or zoomed into a region. `predict` samples it at the centres of an
out_h x out_w grid of output pixels covering a region given in the run's own
coordinates (see `coords`: x from the left, y from the bottom, pixel units, pixel
(row, col) of the picture covering [y - 0.5, y + 0.5] around its centre). The
default region is the whole picture, so at its own size the samples fall exactly
on the pixel centres the network was trained on.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from .config import RunConfig
from .errors import OverfitError
from .models import model_for
from .runs import RunFolder, load_checkpoint, write_atomic
from .video import prob_to_gray

# Output pixels per forward pass: small enough that activations stay in cache (see metrics.DENSE_CHUNK).
RENDER_CHUNK = 1 << 12
# Largest picture `render` will draw, in pixels (a 16-megapixel render must work; this is 16x that).
MAX_RENDER_PIXELS = 1 << 28

RENDER_MODES = ("probability", "class")


class RenderError(OverfitError, ValueError):
    """A render request that cannot be met; the message names the option."""


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
        values = (self.y0, self.y1, self.x0, self.x1)
        if not all(np.isfinite(v) for v in values):
            raise RenderError(f"--region: values must be finite numbers, got {values}")
        if not (self.y1 > self.y0 and self.x1 > self.x0):
            raise RenderError(f"--region: needs y0 < y1 and x0 < x1, got y {self.y0}..{self.y1}, x {self.x0}..{self.x1}")


@dataclass
class LoadedRun:
    """A fitted model ready to evaluate, with what is needed to interpret its output."""

    model: nn.Module
    config: RunConfig
    height: int
    width: int
    step: int

    @property
    def mode(self) -> str:
        return self.config.data.mode


def load_run_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """The model of a run folder from its checkpoint (no pickle: tensors only), in eval mode."""
    folder = RunFolder.open(path)
    state = load_checkpoint(folder.path)
    cfg = RunConfig.from_json(state["config"])
    target = folder.target()
    model = model_for(cfg, target.height, target.width)
    model.load_state_dict(state["model"])
    model.eval().to(device)
    return LoadedRun(model, cfg, target.height, target.width, int(state["step"]))


def sample_grid(region: Region, out_h: int, out_w: int, start: int = 0, end: int | None = None, device: torch.device | str = "cpu") -> torch.Tensor:
    """Coordinates (n, 2) of output pixel centres [start, end) in row-major order, row 0 on top."""
    end = out_h * out_w if end is None else min(end, out_h * out_w)
    index = torch.arange(start, end, device=device)
    rows, cols = index // out_w, index % out_w
    # Row 0 of the output is the top of the region: the largest y.
    y = region.y1 - (rows.double() + 0.5) * ((region.y1 - region.y0) / out_h)
    x = region.x0 + (cols.double() + 0.5) * ((region.x1 - region.x0) / out_w)
    return torch.stack([y, x], dim=1).float()


def outputs_to_values(out: torch.Tensor, mode: str) -> torch.Tensor:
    """Network outputs (n, C) -> displayable values in [0, 1]: P(background) (n,) for binary, clamped (n, C) otherwise."""
    if mode == "binary":
        return torch.softmax(out.float(), dim=1)[:, 1]
    return out.float().clamp(0.0, 1.0)


@torch.inference_mode()
def predict(
    model: nn.Module,
    mode: str,
    out_h: int,
    out_w: int,
    region: Region,
    device: torch.device | str = "cpu",
    chunk: int = RENDER_CHUNK,
) -> np.ndarray:
    """The network sampled on an out_h x out_w grid over `region`, values in [0, 1].

    Binary runs give P(background) (out_h, out_w), so ink is dark as in the picture;
    gray runs (out_h, out_w); rgb runs (out_h, out_w, 3). Memory beyond the result
    is one chunk of coordinates and activations.
    """
    channels = {"binary": 1, "gray": 1, "rgb": 3}[mode]
    result = torch.empty(out_h * out_w, channels, dtype=torch.float32)
    for start in range(0, out_h * out_w, chunk):
        yx = sample_grid(region, out_h, out_w, start, start + chunk, device)
        values = outputs_to_values(model(yx), mode)
        result[start:start + yx.shape[0]] = values.reshape(yx.shape[0], channels).cpu()
    array = result.numpy()
    return array.reshape(out_h, out_w) if channels == 1 else array.reshape(out_h, out_w, 3)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 exactly as the run's frames are written (half up; NaN mid-gray)."""
    return prob_to_gray(values)


def output_size(height: int, width: int, region: Region, scale: float | None, out_width: int | None, out_height: int | None) -> tuple[int, int]:
    """(out_h, out_w) of a render: explicit sizes, or the region's size in pixels times `scale`.

    Given only one of width and height, the other keeps the region's aspect ratio.
    """
    if scale is not None and (out_width is not None or out_height is not None):
        raise RenderError("--scale: give either --scale or --width/--height, not both")
    region_h, region_w = region.y1 - region.y0, region.x1 - region.x0
    if out_width is None and out_height is None:
        scale = 1.0 if scale is None else scale
        if not (np.isfinite(scale) and scale > 0):
            raise RenderError(f"--scale: must be a positive number, got {scale}")
        out_h, out_w = round(region_h * scale), round(region_w * scale)
    elif out_width is None:
        out_h = out_height  # type: ignore[assignment]
        out_w = round(out_h * region_w / region_h)
    elif out_height is None:
        out_w = out_width
        out_h = round(out_w * region_h / region_w)
    else:
        out_h, out_w = out_height, out_width
    if out_h < 1 or out_w < 1:
        raise RenderError(f"--width/--height: the render would be {out_w} x {out_h} pixels; it needs at least 1 x 1")
    if out_h * out_w > MAX_RENDER_PIXELS:
        raise RenderError(f"--scale: a {out_w} x {out_h} render is larger than the limit of {MAX_RENDER_PIXELS:,} pixels")
    return int(out_h), int(out_w)


def check_render_mode(mode: str, render_mode: str) -> None:
    """Refuse a render mode that does not fit a run of data.mode `mode` (before any rendering)."""
    if render_mode not in RENDER_MODES:
        raise RenderError(f"--mode: unknown render mode {render_mode!r}; choose from {', '.join(RENDER_MODES)}")
    if render_mode == "class" and mode != "binary":
        raise RenderError(f"--mode: 'class' is for binary runs; this run fits {mode} pixel values")


def render_image(values: np.ndarray, mode: str, render_mode: str = "probability") -> np.ndarray:
    """Values from `predict` -> uint8 picture; for binary, 'class' gives pure black and white."""
    check_render_mode(mode, render_mode)
    if render_mode == "class":
        return np.where(values > 0.5, 255, 0).astype(np.uint8)
    return to_uint8(values)


def save_png(picture: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 (H, W) or (H, W, 3) picture as PNG, atomically."""
    path = Path(path)
    if not path.parent.is_dir():
        raise RenderError(f"-o: folder {path.parent} does not exist")
    buf = io.BytesIO()
    Image.fromarray(picture).save(buf, format="PNG")
    write_atomic(path, buf.getvalue())
