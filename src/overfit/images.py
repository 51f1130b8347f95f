"""Pixels: values in [0, 1] to 8-bit pictures and PNG bytes, one rounding for every output.

Frames, renders, exports' previews and the lab's pictures all go through `to_uint8`,
so the same prediction gives the same 8-bit picture wherever it is shown.
"""

from __future__ import annotations

import io
import os

import numpy as np
from PIL import Image

from .files import write_atomic


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats of any shape -> uint8: 0 -> 0, 1 -> 255, rounding half up (0.5 -> 128).

    NaN becomes 0.5 (mid-gray) and values outside [0, 1] are clipped, so a diverged
    network still gives a viewable picture instead of an exception.
    """
    v = np.asarray(values, dtype=np.float64)
    v = np.clip(np.nan_to_num(v, nan=0.5, posinf=1.0, neginf=0.0), 0.0, 1.0)
    return np.floor(v * 255.0 + 0.5).astype(np.uint8)


def png_bytes(picture: np.ndarray) -> bytes:
    """PNG of a uint8 (H, W) gray or (H, W, 3) RGB picture."""
    buf = io.BytesIO()
    Image.fromarray(picture, mode="L" if picture.ndim == 2 else "RGB").save(buf, format="PNG")
    return buf.getvalue()


def save_png(picture: np.ndarray, path: str | os.PathLike) -> None:
    """Write a uint8 (H, W) or (H, W, 3) picture as PNG, atomically."""
    write_atomic(path, png_bytes(picture))


def read_png(path: str | os.PathLike, color: bool | None = None) -> np.ndarray:
    """A picture as uint8 (H, W), or (H, W, 3) with `color`; `color=None` keeps an RGB file in colour."""
    with Image.open(path) as img:
        if color is None:
            color = img.mode == "RGB"
        return np.asarray(img.convert("RGB" if color else "L"))
