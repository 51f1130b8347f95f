"""The caption band: a line of text (step, metric) drawn in a dark band above a frame.

    out = annotate(frame, "step 12,000   accuracy 95.3 %")   # (H + band_height(W), W, 3) uint8

The band's height depends on the frame's width only (`band_height`), never on the text, so
every captioned frame of a run has one shape and they can go into one video (video.py
writes the videos, calling `annotate` on each frame). On narrow frames the text shrinks,
puts each field on its own line, or is cut with an ellipsis; the width never changes.
Text uses fonts.py's DejaVu Sans, never a system font, so captions look the same on every
machine. The grid video's header (report/gridvideo.py) uses the band's colours.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image, ImageDraw

from .fonts import font

# Header band of `annotate`: colours (dark band, light text) and size rules. The band height
# depends on the frame width only, never on the text, so every frame of a run has the same
# shape and they can go into one video.
BAND_BG = (24, 24, 24)
BAND_FG = (236, 236, 236)
BAND_FRACTION = 0.045  # band height / frame width: 45 px on a 1000-wide frame
MIN_BAND = 24  # px; room for two lines of small text on narrow frames
FONT_FRACTION = 0.56  # font size / band height for the preferred one-line layout
MIN_FONT = 6  # px; below this DejaVu Sans stops being readable


def band_height(width: int) -> int:
    """Height in pixels of the header band `annotate` puts on a frame `width` pixels wide."""
    band = max(MIN_BAND, round(width * BAND_FRACTION))
    # A multiple of 8, so the band's edge falls on H.264's 8x8 transform blocks: an edge
    # inside a block rings (gray smudges under the band) in the MP4.
    return -(-band // 8) * 8


def _text_width(text: str, size: int) -> float:
    return font(size).getlength(text)


def _fit_lines(lines: list[str], width: int, height: int, largest: int) -> int | None:
    """Largest font size <= `largest` at which `lines` fit a width x height box, or None."""
    for size in range(largest, MIN_FONT - 1, -1):
        # 1.2: line pitch of DejaVu Sans (ascent + descent is about 1.17 em).
        if len(lines) * size * 1.2 <= height and all(_text_width(t, size) <= width for t in lines):
            return size
    return None


def _pad_x(width: int, band: int) -> int:
    # Generous margin on wide frames, almost none on tiny ones where every pixel counts.
    return max(2, min(round(band * 0.3), round(width * 0.02)))


def _ellipsize(text: str, width: float, size: int) -> str:
    if _text_width(text, size) <= width:
        return text
    while text and _text_width(text + "…", size) > width:
        text = text[:-1]
    return text.rstrip() + "…"


def _layout(text: str, width: int, band: int) -> tuple[list[str], int]:
    """Choose lines and font size for `text` in a band `band` px high over a `width` frame."""
    avail_w = max(1, width - 2 * _pad_x(width, band))
    avail_h = band - 2 * max(1, round(band * 0.08))
    preferred = max(MIN_FONT, round(band * FONT_FRACTION))

    text = text.strip()
    layouts = [[text]]
    # Captions separate their fields with runs of spaces ("step 12,000   accuracy 95.3 %"):
    # on narrow frames each field may go on its own line rather than shrink to nothing.
    fields = [f for f in re.split(r"\s{2,}", text) if f]
    if 1 < len(fields) <= 3:
        layouts.append(fields)

    best: tuple[list[str], int] | None = None
    for lines in layouts:
        size = _fit_lines(lines, avail_w, avail_h, preferred)
        if size is not None and (best is None or size > best[1]):
            best = (lines, size)
    if best is not None:
        return best

    # Nothing fits even at the minimum size: cut each line with an ellipsis, keeping one line
    # per field when the fields fit the band's height, so every field stays partly visible.
    lines = layouts[-1] if len(layouts[-1]) * MIN_FONT * 1.2 <= avail_h else layouts[0]
    return [_ellipsize(t, avail_w, MIN_FONT) for t in lines], MIN_FONT


def annotate(gray: np.ndarray, text: str) -> np.ndarray:
    """Put a header band showing `text` on top of a frame; returns RGB uint8 (H + band, W, 3).

    `gray` is (H, W) uint8 (an (H, W, 3) RGB frame is accepted too) and is copied unchanged
    below the band. The band (dark, light text, height `band_height(W)`) depends only on the
    width, so all frames of a run keep one shape. On narrow frames the text shrinks, or its
    fields (separated by two or more spaces) go on separate lines; the width never changes.
    Deterministic: the same input gives the same pixels.
    """
    frame = np.asarray(gray)
    if frame.dtype != np.uint8:
        raise ValueError(f"annotate expects a uint8 frame, got {frame.dtype}")
    if frame.ndim == 2:
        rgb = np.repeat(frame[:, :, None], 3, axis=2)
    elif frame.ndim == 3 and frame.shape[2] == 3:
        rgb = frame
    else:
        raise ValueError(f"annotate expects an (H, W) or (H, W, 3) frame, got {frame.shape}")
    height, width = rgb.shape[:2]

    band = band_height(width)
    header = Image.new("RGB", (width, band), BAND_BG)
    draw = ImageDraw.Draw(header)
    lines, size = _layout(text, width, band)
    face = font(size)
    pitch = size * 1.2
    for i, line in enumerate(lines):
        # "lm": left edge, vertical middle of the line; lines are centred in the band.
        y = band / 2 + (i - (len(lines) - 1) / 2) * pitch
        draw.text((_pad_x(width, band), y), line, font=face, fill=BAND_FG, anchor="lm")

    out = np.empty((band + height, width, 3), dtype=np.uint8)
    out[:band] = np.asarray(header)
    out[band:] = rgb
    return out
