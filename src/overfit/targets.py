"""The picture to fit: rendered text or a loaded image, as a `Target`.

Everything downstream sees a `Target`: the picture as its mode fits it (gray levels, or
RGB for a colour mode), row 0 the top row as displayed. What a run learns from it is the
mode's business (`modes.Mode.target_array`); the shared views are here: gray levels and
the class labels of binary runs, 0 = ink (black) and 1 = background (white). The threshold
is the original experiment's: convert to 8-bit grayscale (ITU-R 601-2 luma, what PIL's
`convert("L")` computes) and call a pixel background when its value is above 128.

Pictures come from untrusted paths, so every way a file can be wrong (missing, a
directory, not an image, truncated, too small, too large) becomes a one-line
`TargetError` naming the path, and the pixel count is checked from the header before
any pixel data is decoded.
"""

from __future__ import annotations

import os
import pathlib
import stat
import struct
import warnings
import zlib
from dataclasses import dataclass
from functools import cached_property

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from .config import DEFAULT_HEIGHT, DEFAULT_MAX_PIXELS, DEFAULT_WIDTH, DataConfig
from .errors import NothingToLearnWarning, TargetError
from .modes import get_mode

__all__ = ["NothingToLearnWarning", "Target", "TargetError", "load_target", "make_target", "render_text"]


# The built-in picture must come out pixel-identical on every machine, so the font
# ships with a dependency (matplotlib) instead of being looked up among system fonts.
FONT_PATH: pathlib.Path = pathlib.Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans-Bold.ttf"

# Original experiment: grayscale value > 128 is background (class 1), the rest ink (class 0).
THRESHOLD = 128

# Auto font size: the ink must fit in this share of the canvas (width, height).
_FILL_WIDTH, _FILL_HEIGHT = 0.9, 0.8
# Extra space between lines of multi-line text, as a fraction of the font size.
_LINE_SPACING = 0.15

# Exceptions PIL raises for damaged data while decoding (it has no common base class).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, IndexError)

# -- rendered text --------------------------------------------------------------


def _font(size: int) -> ImageFont.FreeTypeFont:
    if not FONT_PATH.is_file():
        raise RuntimeError(f"matplotlib's bundled font is missing: {FONT_PATH}; reinstall matplotlib")
    # BASIC layout: raqm (complex-script shaping) is present on some machines and not
    # others, and it can move glyphs; BASIC gives the same pixels everywhere.
    return ImageFont.truetype(str(FONT_PATH), size, layout_engine=ImageFont.Layout.BASIC)


def _text_box(draw: ImageDraw.ImageDraw, text: str, size: int) -> tuple[int, int, int, int]:
    """Bounding box (left, top, right, bottom) of `text` drawn at (0, 0) in the given size."""
    left, top, right, bottom = draw.multiline_textbbox(
        (0, 0), text, font=_font(size), spacing=round(_LINE_SPACING * size), align="center"
    )
    return int(left), int(top), int(np.ceil(right)), int(np.ceil(bottom))


def _auto_font_size(draw: ImageDraw.ImageDraw, text: str, width: int, height: int) -> int:
    """Largest integer size whose text box fits in the _FILL share of the canvas (at least 1)."""

    def fits(size: int) -> bool:
        left, top, right, bottom = _text_box(draw, text, size)
        return right - left <= _FILL_WIDTH * width and bottom - top <= _FILL_HEIGHT * height

    # Exponential search for an upper bound, then bisection; the cap keeps text without
    # visible ink (which "fits" at any size) from growing without end.
    cap = 4 * max(width, height)
    lo, hi = 1, 2
    while hi < cap and fits(hi):
        lo, hi = hi, min(2 * hi, cap)
    if fits(hi):
        return hi
    while hi - lo > 1:  # invariant: fits(lo) or lo == 1, not fits(hi)
        mid = (lo + hi) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid
    return lo


def _ink_box(gray: np.ndarray) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom) of the pixels that are not pure white, or None if none are."""
    rows = np.flatnonzero((gray < 255).any(axis=1))
    cols = np.flatnonzero((gray < 255).any(axis=0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def render_text(
    text: str,
    width: int = DEFAULT_WIDTH,
    height: int = DEFAULT_HEIGHT,
    font_size: int | None = None,
) -> np.ndarray:
    """Render black bold sans-serif text, centred on a white canvas.

    Returns a uint8 (height, width) grayscale array, row 0 at the top. Lines split at
    '\\n' are centred each. With `font_size=None` the largest size is chosen whose text
    fits in about 90 % of the width and 80 % of the height; an explicit size that
    overflows the canvas is rendered clipped.
    """
    text = text.replace("\r\n", "\n")
    if text.strip() == "":
        raise TargetError("text is empty; give some text to render", field="data.text")
    if width < 2 or height < 2:
        raise TargetError(f"canvas is {width} x {height} pixels; at least 2 x 2 is needed")
    if font_size is not None and font_size < 1:
        raise TargetError(f"font size must be positive, got {font_size}", field="data.font_size")

    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    size = font_size if font_size is not None else _auto_font_size(draw, text, width, height)
    font = _font(size)
    spacing = round(_LINE_SPACING * size)

    def draw_at(x: int, y: int) -> np.ndarray:
        draw.rectangle((0, 0, width, height), fill=255)
        try:
            draw.multiline_text((x, y), text, font=font, fill=0, spacing=spacing, align="center")
        except Image.DecompressionBombError:
            # PIL refuses to rasterise text masks above its pixel limit.
            raise TargetError(f"font size {size} is too large to render on a {width} x {height} canvas", field="data.font_size") from None
        return np.array(canvas, dtype=np.uint8)

    # First placement from the layout box; that box includes the first glyph's side
    # bearing (about 1 % of the width for "O"), so measure the real ink and shift it
    # to the centre. Integer shifts move the rendered glyphs exactly.
    left, top, right, bottom = _text_box(draw, text, size)
    x, y = (width - (right - left)) // 2 - left, (height - (bottom - top)) // 2 - top
    gray = draw_at(x, y)
    ink = _ink_box(gray)
    if ink is not None:
        i_left, i_top, i_right, i_bottom = ink
        clipped = i_left == 0 or i_top == 0 or i_right == width or i_bottom == height
        dx = (width - (i_right - i_left)) // 2 - i_left
        dy = (height - (i_bottom - i_top)) // 2 - i_top
        if not clipped and (dx or dy):
            gray = draw_at(x + dx, y + dy)
    return gray


# -- image files ------------------------------------------------------------------


def _beyond_pil(where: str, max_pixels: int) -> TargetError:
    """The refusal of a picture PIL will not decode: more than twice `PIL.Image.MAX_IMAGE_PIXELS` pixels.

    PIL's limit is a process-wide setting that belongs to the application (and guards every
    thread's pictures), so it is never changed here: `max_pixels` is checked from the header
    first, and PIL's limit stays in force above it.
    """
    limit = 2 * (Image.MAX_IMAGE_PIXELS or 0)
    if limit < max_pixels:
        return TargetError(f"picture {where} is more than {limit} pixels, the most PIL decodes "
                           "(it refuses larger pictures as possible decompression bombs)")
    return TargetError(f"picture {where} is more than {limit} pixels, above the limit of {max_pixels}", field="data.max_pixels")


def _has_alpha(img: Image.Image) -> bool:
    bands = img.getbands()
    if "A" in bands or "a" in bands or "transparency" in img.info:
        return True
    return img.mode == "P" and img.palette is not None and img.palette.mode == "RGBA"


def _to_array(img: Image.Image, where: str, color: bool) -> np.ndarray:
    """Decoded image of any PIL mode -> uint8 (H, W) luma, or (H, W, 3) RGB if `color`; transparency as white."""
    if color:
        if img.mode.startswith("I") or (img.mode in ("F", "L", "1") and not _has_alpha(img)):
            gray = _to_gray(img, where)
            return np.repeat(gray[:, :, None], 3, axis=2)
        return np.array(_to_rgb(img, where), dtype=np.uint8)
    return _to_gray(img, where)


def _to_rgb(img: Image.Image, where: str) -> Image.Image:
    """Any colour PIL mode -> RGB, transparency composited over white."""
    try:
        if _has_alpha(img):
            # A transparent background must read as background: composite over white.
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", img.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return img if img.mode == "RGB" else img.convert("RGB")
    except ValueError:
        raise TargetError(f"cannot read picture {where}: unsupported pixel mode {img.mode}") from None


def _to_gray(img: Image.Image, where: str) -> np.ndarray:
    """Decoded image of any PIL mode -> uint8 (H, W) luma, transparency as white."""
    mode = img.mode
    if mode == "L" and not _has_alpha(img):
        return np.array(img, dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        # 16-bit samples: PIL's convert("L") clips them at 255; scale 0..65535 to
        # 0..255 with rounding instead (v / 257). 32-bit "I" is read as 16-bit too.
        v = np.clip(np.asarray(img).astype(np.int64), 0, 65535)
        return ((v * 255 + 32767) // 65535).astype(np.uint8)
    if mode == "F":
        v = np.asarray(img, dtype=np.float64)
        if not np.isfinite(v).all():
            raise TargetError(f"picture {where} has NaN or infinite pixel values")
        # Float pictures come either in [0, 1] or in [0, 255]; PIL assumes the latter
        # and truncates. Take [0, 1] when all values lie there, and round.
        if v.size and v.min() >= 0.0 and v.max() <= 1.0:
            v = v * 255.0
        return np.clip(np.rint(v), 0, 255).astype(np.uint8)
    return np.array(_to_rgb(img, where).convert("L"), dtype=np.uint8)


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS, color: bool = False) -> np.ndarray:
    """Read a picture file as uint8 (H, W) grayscale, or (H, W, 3) RGB if `color`; row 0 at the top as displayed.

    Any format and mode PIL reads (PNG, JPEG, BMP, GIF's first frame, WebP, TIFF; 1, L,
    P, LA, RGB, RGBA, CMYK, 16-bit, float). Transparency is composited over white, 16-bit
    samples are scaled (65535 -> 255), EXIF orientation is applied. The pixel count is
    checked from the header, before decoding, against `max_pixels`; PIL's own limit
    (`PIL.Image.MAX_IMAGE_PIXELS`, ~179 megapixels refused) is left as the application set it.
    """
    where = os.fsdecode(path)
    if not os.path.exists(path):
        raise TargetError(f"picture not found: {where}")
    if os.path.isdir(path):
        raise TargetError(f"not a file but a directory: {where}")
    if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block the open below forever; a device never ends
        raise TargetError(f"cannot read picture {where}: not a regular file (a FIFO or device is never read)")

    try:
        img = Image.open(path)  # lazy: reads the header only (PIL refuses a size above its own bomb limit here)
    except UnidentifiedImageError:
        raise TargetError(f"cannot read picture {where}: not an image file (or an unsupported format)") from None
    except Image.DecompressionBombError:
        raise _beyond_pil(where, max_pixels) from None
    except OSError as e:
        raise TargetError(f"cannot read picture {where}: {e.strerror or e}") from None
    with img:
        w, h = img.size
        if w < 2 or h < 2:
            raise TargetError(f"picture {where} is {w} x {h} pixels; at least 2 x 2 is needed")
        if w * h > max_pixels:
            raise TargetError(
                f"picture {where} is {w * h} pixels ({w} x {h}), above the limit of {max_pixels}", field="data.max_pixels"
            )
        try:
            img.load()
            # Phone cameras store pictures sideways plus an EXIF rotation tag.
            ImageOps.exif_transpose(img, in_place=True)
        except Image.DecompressionBombError:  # a frame or tile larger than PIL's limit (GIF, TIFF)
            raise _beyond_pil(where, max_pixels) from None
        except _DECODE_ERRORS as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise TargetError(f"picture {where} is truncated or corrupt: {reason}") from None
        return _to_array(img, where, color)


# -- the target -------------------------------------------------------------------


def binarize(gray: np.ndarray) -> np.ndarray:
    """Grayscale -> class labels (uint8, same shape): 1 (background) where gray > 128, else 0 (ink)."""
    return (np.asarray(gray) > THRESHOLD).astype(np.uint8)


@dataclass(frozen=True, eq=False)  # eq=False: arrays have no single truth value; compare by identity
class Target:
    """A picture to fit, as its mode reads it. Row 0 is the top row as displayed.

    What a run learns from it (labels, values, or anything a new mode derives) is the mode's
    `target_array`; the views here are the ones every mode can share.
    """

    image: np.ndarray
    """The picture as fitted, uint8: (H, W) gray levels, or (H, W, 3) RGB for a mode with colour pictures."""
    source: str
    """Short human description: 'text "OVERFIT"' or the image path."""
    mode: str = "binary"
    """The config's data.mode."""

    @cached_property
    def gray(self) -> np.ndarray:
        """(H, W) uint8 gray levels (luma of a colour picture)."""
        return to_luma(self.image) if self.image.ndim == 3 else self.image

    @cached_property
    def labels(self) -> np.ndarray:
        """(H, W) uint8 class labels thresholded from the gray levels: 1 = background, 0 = ink."""
        return binarize(self.gray)

    @property
    def values(self) -> np.ndarray:
        """The picture's values: (H, W, C) float32 in [0, 1], C = 1 (gray) or 3 (colour)."""
        image = self.image
        return (image if image.ndim == 3 else image[:, :, None]).astype(np.float32) / 255.0

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def num_pixels(self) -> int:
        return self.height * self.width

    @property
    def background_fraction(self) -> float:
        """Share of pixels in class 1 (background)."""
        return float(np.count_nonzero(self.labels)) / self.num_pixels

    @property
    def majority_rate(self) -> float:
        """Accuracy of always predicting the more common class: the floor a binary model must beat."""
        bg = self.background_fraction
        return max(bg, 1.0 - bg)


def load_target(cfg: DataConfig) -> Target:
    """Build the target a config asks for: `cfg.image` if set, else the rendered `cfg.text`.

    Warns with `NothingToLearnWarning` (and still returns) when the mode finds nothing to
    learn in the picture (a binary picture of one class).
    """
    mode = get_mode(cfg.mode)
    if cfg.image is not None:
        picture = load_image(cfg.image, cfg.max_pixels, color=mode.color)
        source = cfg.image
    else:
        picture = render_text(cfg.text, cfg.width, cfg.height, cfg.font_size)
        source = 'text "' + cfg.text.replace("\n", "\\n") + '"'
    target = make_target(picture, source, cfg.mode)
    why = mode.nothing_to_learn(target)
    if why is not None:
        warnings.warn(f"{source} is all {why}: nothing to learn", NothingToLearnWarning, stacklevel=2)
    return target


def to_luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H, W) uint8 luma, exactly as PIL's convert("L") (ITU-R 601-2)."""
    return np.array(Image.fromarray(rgb, mode="RGB").convert("L"), dtype=np.uint8)


def make_target(picture: np.ndarray, source: str, mode: str = "binary") -> Target:
    """A Target from a uint8 picture, (H, W) gray or (H, W, 3) RGB, with the channels `mode` fits."""
    picture = np.asarray(picture)
    if get_mode(mode).color:
        image = picture if picture.ndim == 3 else np.repeat(picture[:, :, None], 3, axis=2)
    else:
        image = to_luma(picture) if picture.ndim == 3 else picture
    return Target(image=image, source=source, mode=mode)
