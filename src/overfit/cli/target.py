"""The options that choose the picture (--text, --image, --size, --font-size, --max-pixels), shared by train and reproduce."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .errors import warnings_as_lines


def target_options(f: Any) -> Any:
    """Add the picture options to a command."""
    for option in reversed([
        click.option("--text", help="Fit this text, rendered black on white ('\\n' for a new line)."),
        click.option("--image", type=click.Path(), help="Fit this picture (PNG, JPEG, BMP, GIF, WebP, TIFF)."),
        click.option("--size", metavar="WxH", help="Canvas for --text, e.g. 1000x300 (the default)."),
        click.option("--font-size", type=int, help="Font size in pixels for --text (default: fill the canvas)."),
        click.option("--max-pixels", type=int, help="Refuse pictures larger than this (default 50000000)."),
    ]):
        f = option(f)
    return f


def target_overrides(text: str | None, image: str | None, size: str | None, font_size: int | None,
                     max_pixels: int | None) -> dict[str, str]:
    """Dotted config overrides for the picture options."""
    overrides: dict[str, str] = {}
    if text is not None:
        # A shell passes "\n" literally; it means a line break here.
        overrides["data.text"] = text.replace("\\n", "\n")
        overrides["data.image"] = "none"
    if image is not None:
        overrides["data.image"] = str(Path(image).expanduser().resolve())
    if size is not None:
        w, _, h = size.lower().partition("x")
        if not (w.isdigit() and h.isdigit()):
            raise click.BadParameter(f"expected WxH like 1000x300, got {size!r}", param_hint="--size")
        overrides["data.width"], overrides["data.height"] = w, h
    if font_size is not None:
        overrides["data.font_size"] = str(font_size)
    if max_pixels is not None:
        overrides["data.max_pixels"] = str(max_pixels)
    return overrides


def load_target(data: Any) -> Any:
    """The picture of a `DataConfig`, with its warnings (e.g. nothing to learn) printed as `Warning:` lines."""
    from ..targets import load_target as load

    with warnings_as_lines():
        return load(data)
