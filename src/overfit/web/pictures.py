"""Pictures for the browser: the colour map, preview sizes and PNG encoding.

A classification mode predicts a class probability in [0, 1] (binary: P(background));
shown in gray, a half-learned network is a muddy blur where 0.4 and 0.6 look the
same. A perceptual colour map (viridis: lightness grows evenly with the value,
readable with colour-blindness) makes the undecided band visible. The target of such
a run goes through the same map, so "ink" and "background" have the same colours on
both sides. Modes that fit pixel values are shown as they are. Which is which, and
what the target looks like to the network, comes from the mode registry (`modes`);
the rounding to 8 bits from `images.to_uint8`, as for every other picture.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image

from ..images import to_uint8
from ..modes import Mode
from ..targets import make_target

COLOUR_MAP = "viridis"
# The colour map's ends: a class probability of 0 (ink) and of 1 (background).
COLOUR_ENDS = ("ink", "background")
# Live previews start at about this many pixels (1000 x 300 becomes 258 x 77, a quarter of each
# side); the run sizes them to what the model costs to draw, within these bounds.
PREVIEW_PIXELS = 20_000
MIN_PREVIEW_PIXELS, MAX_PREVIEW_PIXELS = 2_000, 40_000


@lru_cache(maxsize=1)
def colour_lut() -> np.ndarray:
    """(256, 3) uint8: the colour of each 8-bit value, 0 = ink ... 255 = background."""
    import matplotlib

    cmap = matplotlib.colormaps[COLOUR_MAP]
    return np.asarray(cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5, dtype=np.uint8)


def colour_stops(n: int = 9) -> list[str]:
    """`n` evenly spaced colours of the map as CSS hex, for the legend's gradient."""
    lut = colour_lut()
    return ["#{:02x}{:02x}{:02x}".format(*lut[round(i * 255 / (n - 1))]) for i in range(n)]


def colour_mapped(mode: Mode) -> bool:
    """True where the mode's displayable prediction is a class probability: those go through the colour map."""
    return mode.shows_probability


def _shown(u8: np.ndarray, mode: Mode) -> np.ndarray:
    """8-bit values -> the picture the page shows: colour-mapped (a one-channel probability) or as they are."""
    return colour_lut()[u8] if colour_mapped(mode) and u8.ndim == 2 else u8


def show(values: np.ndarray, mode: Mode) -> np.ndarray:
    """Predicted values in [0, 1] (the mode's output head) -> uint8 picture ready to show."""
    return _shown(to_uint8(values), mode)


def show_frame(frame: np.ndarray, mode: Mode) -> np.ndarray:
    """A saved evaluation frame (uint8, `to_uint8` of the same values) ready to show."""
    return _shown(frame, mode)


def show_target(picture: np.ndarray, mode: Mode) -> np.ndarray:
    """A uint8 picture (target.png, a rendered text, an upload) as the network of `mode` sees it."""
    target = make_target(picture, "", mode.name)
    return show(mode.target_picture(target), mode)


def preview_size(height: int, width: int, pixels: int = PREVIEW_PIXELS) -> tuple[int, int]:
    """(h, w) of a live preview: the picture scaled down to about `pixels`, never up, at least 1 x 1."""
    scale = min(1.0, math.sqrt(pixels / max(1, height * width)))
    h, w = max(1, round(height * scale)), max(1, round(width * scale))
    # A side at its 1-pixel floor must not let the other blow the budget (a 1 x 100000 strip).
    if h == 1 and w > 1:
        w = min(w, max(1, pixels))
    if w == 1 and h > 1:
        h = min(h, max(1, pixels))
    return h, w


def png(picture: np.ndarray) -> bytes:
    """uint8 (H, W) or (H, W, 3) -> PNG bytes; fast compression, since previews are sent ~10 times a second."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(picture)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
