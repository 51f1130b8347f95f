"""Pictures for the browser: the colour map, preview sizes and PNG encoding.

Binary runs predict P(background) in [0, 1]; shown in gray, a half-learned network
is a muddy blur where 0.4 and 0.6 look the same. A perceptual colour map (viridis:
lightness grows evenly with the value, readable with colour-blindness) makes the
undecided band visible. The target of a binary run goes through the same map, so
"ink" and "background" have the same colours on both sides. Gray and RGB runs fit
pixel values, and are shown as they are.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache

import numpy as np
from PIL import Image

from ..targets import binarize

COLOUR_MAP = "viridis"
# Live previews start at about this many pixels (1000 x 300 becomes 258 x 77, a quarter of each
# side); the run manager then sizes them to what the model costs to draw, within these bounds.
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


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8, NaN as 0.5 (undecided) so a diverging run still draws."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.5, posinf=1.0, neginf=0.0)
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)


def show(values: np.ndarray, mode: str) -> np.ndarray:
    """Predicted values in [0, 1] -> uint8 picture: binary through the colour map, gray/rgb as they are."""
    u8 = to_uint8(values)
    return colour_lut()[u8] if mode == "binary" else u8


def show_frame(frame: np.ndarray, mode: str) -> np.ndarray:
    """A saved evaluation frame (uint8, 255 = background for binary) ready to show."""
    return colour_lut()[frame] if mode == "binary" and frame.ndim == 2 else frame


def show_target(picture: np.ndarray, mode: str) -> np.ndarray:
    """The run's target.png pixels as the network sees them: binarized for binary runs."""
    if mode == "binary":
        gray = picture if picture.ndim == 2 else np.asarray(Image.fromarray(picture).convert("L"))
        return colour_lut()[binarize(gray) * 255]
    return picture


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


def read_png(path) -> np.ndarray:
    """A PNG from a run folder as uint8 (H, W) or (H, W, 3)."""
    with Image.open(path) as img:
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGB" if "A" in img.mode or img.mode in ("P", "RGBA", "CMYK") else "L")
        return np.asarray(img)
