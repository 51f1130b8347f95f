"""Videos of training: captioned progress frames, the H.264 MP4 and the looping GIF.

During training the network is evaluated on every pixel and each prediction is kept as a
frame. This module turns those frames into what people watch: a captioned frame
(`annotate`), an H.264 MP4 (`write_mp4`) and a small looping GIF (`write_gif`), and both at
once for a run (`write_progress`, which can do other work while ffmpeg encodes).
The figures of a run are in plots.py, the pixel conversion ([0, 1] -> uint8) in images.py.

Conventions:
- Frames are numpy arrays, row 0 = top of the picture, uint8, (H, W) gray or (H, W, 3) RGB.
- Every file is written through `files.atomic_path`, so a crash or a reader polling the run
  folder never sees half a file.
- Video goes through imageio-ffmpeg's bundled ffmpeg binary, never a system ffmpeg, and text
  uses fonts.py's DejaVu Sans, never a system font, so outputs look the same on every machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw

from .files import atomic_path
from .fonts import font

# How long the last frame stays on screen in the MP4 and GIF, so viewers see the result.
HOLD_LAST_S = 1.0

# Header band of `annotate`: colours (dark band, light text) and size rules. The band height
# depends on the frame width only, never on the text, so every frame of a run has the same
# shape and they can go into one video.
BAND_BG = (24, 24, 24)
BAND_FG = (236, 236, 236)
BAND_FRACTION = 0.045  # band height / frame width: 45 px on a 1000-wide frame
MIN_BAND = 24  # px; room for two lines of small text on narrow frames
FONT_FRACTION = 0.56  # font size / band height for the preferred one-line layout
MIN_FONT = 6  # px; below this DejaVu Sans stops being readable

# GIF frames are cut to this many gray levels: steps of 4/255 do not show as banding in a
# preview, and leaving palette entries free lets Pillow mark unchanged pixels transparent,
# which makes a slowly converging run several times smaller.
GIF_GRAY_LEVELS = 64


# ----------------------------------------------------------------------------- frames


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


# ----------------------------------------------------------------------------- MP4 and GIF


def _check_frames(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Validate frames (non-empty, uint8, one shape) and return them as (H, W, 3) RGB."""
    if len(frames) == 0:
        raise ValueError("no frames to write")
    arrays = [np.asarray(f) for f in frames]
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.dtype != np.uint8:
            raise ValueError(f"frame {i}: expected uint8, got {a.dtype}")
        if a.shape != shape:
            raise ValueError(f"frame {i}: shape {a.shape} differs from frame 0's {shape}")
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 3)):
        raise ValueError(f"frames must be (H, W) or (H, W, 3), got {shape}")
    if len(shape) == 2:
        arrays = [np.repeat(a[:, :, None], 3, axis=2) for a in arrays]
    return arrays


def _check_fps(fps: float) -> None:
    if not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")


def held_frames(fps: float) -> int:
    """Extra copies of the last frame that `write_mp4` appends (HOLD_LAST_S of video)."""
    return max(0, round(HOLD_LAST_S * fps))


def write_mp4(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 8) -> None:
    """Write frames as an H.264 (yuv420p) MP4 that browsers and phones play.

    `frames`: uint8, all one shape, (H, W) gray or (H, W, 3) RGB. yuv420p needs even sizes,
    so an odd height or width is padded by one edge pixel (bottom/right); the video is
    (H + H % 2, W + W % 2). The last frame is repeated `held_frames(fps)` more times, so the
    file has len(frames) + held_frames(fps) frames. Written atomically. Raises ValueError on
    an empty list, mixed shapes or a non-positive fps.
    """
    import imageio_ffmpeg

    arrays = _check_frames(frames)
    _check_fps(fps)
    height, width = arrays[0].shape[:2]
    if height % 2 or width % 2:
        # Edge padding (bottom row / right column repeated) is invisible, unlike a black bar.
        pad = ((0, height % 2), (0, width % 2), (0, 0))
        arrays = [np.pad(a, pad, mode="edge") for a in arrays]
    size = (width + width % 2, height + height % 2)  # ffmpeg wants (width, height)

    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(
            tmp,
            size,
            fps=fps,
            codec="libx264",  # named, so imageio-ffmpeg skips probing every encoder
            pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p",
            quality=None,
            # We already made the size even: 1 stops imageio-ffmpeg rescaling to 16 px blocks.
            macro_block_size=1,
            ffmpeg_log_level="error",
            # crf 18: visually lossless for crisp text and hard ink edges, still small files.
            # faststart: moov atom first, so the web viewer can start playing at once.
            output_params=["-crf", "18", "-preset", "medium", "-movflags", "+faststart"],
        )
        writer.send(None)  # prime the generator
        try:
            for a in arrays + [arrays[-1]] * held_frames(fps):
                writer.send(np.ascontiguousarray(a))
        finally:
            writer.close()
        # imageio-ffmpeg does not report ffmpeg's exit status: an empty file means it failed.
        if os.path.getsize(tmp) == 0:
            raise RuntimeError(f"ffmpeg wrote nothing for {path}")


def write_gif(
    frames: Sequence[np.ndarray],
    path: str | os.PathLike,
    fps: float = 8,
    max_width: int = 640,
) -> None:
    """Write frames as a looping GIF, downscaled (LANCZOS) to at most `max_width` wide.

    Same frame rules as `write_mp4`; the last frame is shown HOLD_LAST_S longer. Pillow
    merges identical consecutive frames into one longer frame, so the GIF can have fewer
    frames than given (never more). Written atomically.
    """
    arrays = _check_frames(frames)
    _check_fps(fps)
    if max_width < 1:
        raise ValueError(f"max_width must be >= 1, got {max_width}")
    height, width = arrays[0].shape[:2]
    if width > max_width:
        new_size = (max_width, max(1, round(height * max_width / width)))
    else:
        new_size = (width, height)

    # Frames from `annotate` are gray (R == G == B): save them as gray cut to GIF_GRAY_LEVELS,
    # which compresses far better than a per-frame adaptive colour palette. Colour frames
    # are left to Pillow's adaptive palette.
    gray = all(np.array_equal(a[..., 0], a[..., 1]) and np.array_equal(a[..., 0], a[..., 2]) for a in arrays)
    step = 255.0 / (GIF_GRAY_LEVELS - 1)
    images = []
    for a in arrays:
        img = Image.fromarray(a[..., 0] if gray else a, "L" if gray else "RGB")
        if img.size != new_size:
            img = img.resize(new_size, Image.Resampling.LANCZOS)
        if gray:
            levels = np.floor(np.asarray(img, dtype=np.float64) / step + 0.5) * step
            img = Image.fromarray(np.floor(levels + 0.5).astype(np.uint8), "L")
        images.append(img)

    frame_ms = 1000.0 / fps
    durations = [round(frame_ms)] * len(images)
    durations[-1] = round(frame_ms + 1000.0 * HOLD_LAST_S)
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,  # loop forever
            optimize=True,  # also: unchanged pixels become transparent in later frames
        )


@contextlib.contextmanager
def mp4_alongside(frames: Sequence[np.ndarray], path: str | os.PathLike, fps: float = 8) -> Iterator[None]:
    """`write_mp4` on a helper thread while the `with` block runs; waits for it at the end and raises what it raised.

    ffmpeg encodes in its own process, so with a second core the encoding overlaps the
    block's work; the helper thread only pipes frames to ffmpeg and waits, which holds
    the GIL for almost none of the time.
    """
    failed: list[BaseException] = []

    def work() -> None:
        try:
            write_mp4(frames, path, fps=fps)
        except BaseException as e:  # handed to the caller below
            failed.append(e)

    worker = threading.Thread(target=work, name="overfit-mp4")
    worker.start()
    try:
        yield
    finally:
        worker.join()
    if failed:
        raise failed[0]


def write_progress(
    frames: Sequence[np.ndarray],
    captions: Sequence[str],
    mp4_path: str | os.PathLike,
    gif_path: str | os.PathLike,
    fps: float = 8,
    meanwhile: Callable[[], None] | None = None,
) -> None:
    """Caption each gray progress frame with `annotate` and write both the MP4 and the GIF.

    The GIF, and `meanwhile()` if given (e.g. drawing final.png), run while ffmpeg encodes the MP4.
    """
    if len(frames) != len(captions):
        raise ValueError(f"{len(frames)} frames but {len(captions)} captions")
    annotated = [annotate(f, c) for f, c in zip(frames, captions)]
    with mp4_alongside(annotated, mp4_path, fps=fps):
        if meanwhile is not None:
            meanwhile()
        write_gif(annotated, gif_path, fps=fps)
