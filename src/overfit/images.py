"""Pixels: values in [0, 1] to 8-bit pictures and PNG bytes, one rounding for every output.

Frames, renders, exports' previews and the lab's pictures all go through `to_uint8`,
so the same prediction gives the same 8-bit picture wherever it is shown. `StoredFrames`
reads a run's frames back one PNG at a time.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO, Callable

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


def read_png(path: str | os.PathLike | BinaryIO, color: bool | None = None, max_pixels: int | None = None) -> np.ndarray:
    """A picture as uint8 (H, W), or (H, W, 3) with `color`; `color=None` keeps an RGB file in colour.

    A picture of more than `max_pixels` (or than PIL's decompression-bomb limit) is a ValueError, raised from its
    header before it is decoded.
    """
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ValueError(str(e)) from None
    with img:
        if max_pixels is not None and img.width * img.height > max_pixels:
            raise ValueError(f"it is {img.width} x {img.height}, more than data.max_pixels = {max_pixels:,} pixels")
        if color is None:
            color = img.mode == "RGB"
        return np.asarray(img.convert("RGB" if color else "L"))


class StoredFrames(Sequence):
    """Frames on disk (a run folder's) as a sequence of (step, picture), each PNG read when its item is accessed.

    Nothing is kept: memory does not grow with the number or size of the frames, so the video
    writers (video.py) can go through thousands of 4096 x 4096 frames one at a time. `steps`
    lists the steps without reading a file; `pictures` is the same sequence without the steps.
    A frame deleted after the sequence was made raises FileNotFoundError when accessed.
    """

    def __init__(self, files: list[tuple[int, Path]], read: Callable[[Path], np.ndarray] | None = None) -> None:
        self._files = files
        self._read = read or read_png  # `runs` passes one that opens no link

    @property
    def steps(self) -> list[int]:
        return [step for step, _ in self._files]

    @property
    def pictures(self) -> Sequence[Any]:
        """uint8 pictures, (H, W) or (H, W, 3), read on access like the pairs."""
        return _StoredPictures(self)

    def __len__(self) -> int:
        return len(self._files)

    def __getitem__(self, index):  # int -> (step, picture); slice -> StoredFrames
        if isinstance(index, slice):
            return StoredFrames(self._files[index], self._read)
        step, path = self._files[index]
        return step, self._read(path)


class _StoredPictures(Sequence):
    """`StoredFrames.pictures`: the pictures alone, read on access."""

    def __init__(self, frames: StoredFrames) -> None:
        self._frames = frames

    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, index):  # int -> picture; slice -> pictures of that slice
        if isinstance(index, slice):
            return _StoredPictures(self._frames[index])
        return self._frames[index][1]
