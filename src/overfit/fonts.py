"""Fonts for text drawn into frames: the DejaVu Sans faces shipped inside matplotlib.

Never a system font, so captions and the report's grid video give the same pixels on every
machine that has overfit's dependencies installed.
"""

from __future__ import annotations

import functools
import os

from PIL import ImageFont


@functools.cache
def font_path(bold: bool = False) -> str:
    """Path of DejaVu Sans (or DejaVu Sans Bold) in matplotlib's font folder."""
    import matplotlib  # lazily: only the font folder is needed, not plotting

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)


@functools.lru_cache(maxsize=128)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans at `size` pixels, for Pillow's ImageDraw.text."""
    # BASIC layout: no dependence on whether libraqm is installed, so text renders the
    # same pixels on every machine.
    return ImageFont.truetype(font_path(bold), size, layout_engine=ImageFont.Layout.BASIC)
