"""Visual outputs of a run: progress frames, the MP4 and GIF of training, and two PNG plots.

During training the network is evaluated on every pixel and the probability of class 1
(background) is kept as a grayscale frame. This module turns those frames into what people
look at: a captioned frame (`annotate`), an H.264 MP4 (`write_mp4`) and a small looping GIF
(`write_gif`), plus a scatter of one training batch (`save_samples_plot`) and the final
target-vs-prediction figure (`save_final_plot`).

Conventions:
- Frames are numpy arrays, row 0 = top of the picture, uint8, (H, W) gray or (H, W, 3) RGB.
- Every file is written to a temporary file in the destination folder and moved into place
  with `os.replace`, so a crash or a reader polling the run folder never sees half a file.
- Video goes through imageio-ffmpeg's bundled ffmpeg binary, never a system ffmpeg, and text
  uses the DejaVu Sans font shipped inside matplotlib, never a system font, so outputs look
  the same on every machine.
- Plots use `matplotlib.figure.Figure` directly (no pyplot, no rcParams changes) so they can
  be drawn from a background thread while training runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

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

# Scatter colours of `save_samples_plot`: ink dark like the picture, background light but
# still visible on the white axes.
INK_COLOR = "#1b1b1f"
BACKGROUND_COLOR = "#8cbbe6"


# ----------------------------------------------------------------------------- frames


def prob_to_gray(prob: np.ndarray) -> np.ndarray:
    """Map probabilities of background, (H, W) float in [0, 1], to a uint8 frame (H, W).

    0 -> 0 (black ink), 1 -> 255 (white background), rounding half up (0.5 -> 128).
    NaN becomes 0.5 (undecided, mid-gray) and values outside [0, 1] are clipped, so a
    diverged network still gives a viewable frame instead of an exception.
    """
    p = np.asarray(prob, dtype=np.float64)
    p = np.nan_to_num(p, nan=0.5, posinf=1.0, neginf=0.0)
    p = np.clip(p, 0.0, 1.0)
    return np.floor(p * 255.0 + 0.5).astype(np.uint8)


@functools.cache
def _font_path() -> str:
    import matplotlib

    return os.path.join(matplotlib.get_data_path(), "fonts", "ttf", "DejaVuSans.ttf")


@functools.lru_cache(maxsize=64)
def _font(size: int) -> ImageFont.FreeTypeFont:
    # BASIC layout: no dependence on whether libraqm is installed, so text renders the
    # same pixels on every machine.
    return ImageFont.truetype(_font_path(), size, layout_engine=ImageFont.Layout.BASIC)


def band_height(width: int) -> int:
    """Height in pixels of the header band `annotate` puts on a frame `width` pixels wide."""
    band = max(MIN_BAND, round(width * BAND_FRACTION))
    # A multiple of 8, so the band's edge falls on H.264's 8x8 transform blocks: an edge
    # inside a block rings (gray smudges under the band) in the MP4.
    return -(-band // 8) * 8


def _text_width(text: str, size: int) -> float:
    return _font(size).getlength(text)


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
    font = _font(size)
    pitch = size * 1.2
    for i, line in enumerate(lines):
        # "lm": left edge, vertical middle of the line; lines are centred in the band.
        y = band / 2 + (i - (len(lines) - 1) / 2) * pitch
        draw.text((_pad_x(width, band), y), line, font=font, fill=BAND_FG, anchor="lm")

    out = np.empty((band + height, width, 3), dtype=np.uint8)
    out[:band] = np.asarray(header)
    out[band:] = rgb
    return out


# ----------------------------------------------------------------------------- files


@contextlib.contextmanager
def _atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds."""
    final = Path(path)
    # Keep the real extension last: ffmpeg picks the container from it.
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{final.suffix}", dir=final.parent)
    os.close(fd)
    try:
        yield tmp
        # mkstemp creates 0600 files; outputs are meant to be shared (web viewer, colleagues).
        os.chmod(tmp, 0o644)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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

    with _atomic_path(path) as tmp:
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
    with _atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,  # loop forever
            optimize=True,  # also: unchanged pixels become transparent in later frames
        )


def write_progress(
    frames: Sequence[np.ndarray],
    captions: Sequence[str],
    mp4_path: str | os.PathLike,
    gif_path: str | os.PathLike,
    fps: float = 8,
) -> None:
    """Caption each gray progress frame with `annotate` and write both the MP4 and the GIF."""
    if len(frames) != len(captions):
        raise ValueError(f"{len(frames)} frames but {len(captions)} captions")
    annotated = [annotate(f, c) for f, c in zip(frames, captions)]
    write_mp4(annotated, mp4_path, fps=fps)
    write_gif(annotated, gif_path, fps=fps)


# ----------------------------------------------------------------------------- plots


def _new_figure(width_in: float, height_in: float, dpi: float, **kwargs):
    # Figure + FigureCanvasAgg instead of pyplot: no global figure registry, safe off the
    # main thread, and nothing to close.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, facecolor="white", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig, path: str | os.PathLike) -> None:
    with _atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, facecolor="white")


def save_samples_plot(
    yx: np.ndarray,
    labels: np.ndarray,
    height: int,
    width: int,
    path: str | os.PathLike,
) -> None:
    """Scatter one training batch: points (x, y) = (yx[:, 1], yx[:, 0]) coloured by label.

    `yx` (N, 2) is in pixel units with y measured upward from the bottom row, so it is plotted
    as-is on [0, width] x [0, height] with equal aspect and the picture appears upright.
    `labels` (N,) are 0 (ink, dark) or 1 (background, light); for gray and rgb runs they are
    the sampled pixel values (N, C) in [0, 1], and points take those colours. Written
    atomically as PNG.
    """
    yx = np.asarray(yx, dtype=np.float64)
    labels = np.asarray(labels)
    colors = None
    if labels.ndim == 2:  # pixel values (N, C)
        colors = np.clip(np.repeat(labels, 3, axis=1) if labels.shape[1] == 1 else labels[:, :3], 0.0, 1.0)
        labels = np.zeros(labels.shape[0])
    labels = labels.reshape(-1)
    if yx.ndim != 2 or yx.shape[1] != 2 or yx.shape[0] != labels.shape[0]:
        raise ValueError(f"yx must be (N, 2) with N labels, got {yx.shape} and {labels.shape}")
    n = yx.shape[0]

    # Axes about 9 in wide for wide pictures, 5.5 in tall for tall ones; room for title/legend.
    aspect = width / max(height, 1)
    ax_w, ax_h = (9.0, 9.0 / aspect) if aspect >= 9.0 / 5.5 else (5.5 * aspect, 5.5)
    ax_w, ax_h = max(ax_w, 3.0), max(ax_h, 1.5)
    fig = _new_figure(ax_w + 1.2, ax_h + 1.3, dpi=120, layout="constrained")
    ax = fig.add_subplot()

    # Marker area shrinks with the batch size so big batches do not become a solid blob.
    s = float(np.clip(8000.0 / max(n, 1), 0.3, 14.0))
    if colors is not None:
        ax.scatter(yx[:, 1], yx[:, 0], s=s, c=colors, marker="o", linewidths=0, label="pixel value", rasterized=True)
    else:
        for value, name, color in ((1, "background (1)", BACKGROUND_COLOR), (0, "ink (0)", INK_COLOR)):
            pts = yx[labels == value]
            ax.scatter(pts[:, 1], pts[:, 0], s=s, c=color, marker="o", linewidths=0, label=name, rasterized=True)

    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels, up)")
    ax.set_title(f"one training batch: {n:,} random coordinates", loc="left", fontsize=12)
    for spine in ax.spines.values():
        spine.set_color("#9a9a9a")
    ax.tick_params(colors="#444444", labelsize=9)
    # Legend above the plot, right-aligned, so it never hides points.
    handles, names = ax.get_legend_handles_labels()
    ax.legend(
        handles[::-1],
        names[::-1],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=2,
        frameon=False,
        markerscale=max(1.0, 5.0 / np.sqrt(s)),
        fontsize=10,
        borderaxespad=0.2,
        handletextpad=0.3,
    )
    _save_png(fig, path)


def save_final_plot(
    target: np.ndarray,
    prob: np.ndarray,
    path: str | os.PathLike,
    title: str = "",
    prediction_name: str = "prediction (probability of background)",
) -> None:
    """Show the target and the prediction side by side.

    `target` and `prob`: (H, W) or (H, W, 3) in [0, 1], row 0 = top: binary labels and the
    predicted probability of background, or pixel values; gray pictures are drawn with
    the gray colormap on [0, 1] (ink black, background white). Wide pictures (W > 1.5 H) are
    stacked vertically so they stay big. Pictures are shown at native resolution (1 pixel =
    1 pixel) when they fit, upscaled by an integer factor when small, scaled down when huge.
    Optional `title` goes above both panels. Written atomically as PNG.
    """
    target = np.asarray(target, dtype=np.float64)
    prob = np.clip(np.nan_to_num(np.asarray(prob, dtype=np.float64), nan=0.5), 0.0, 1.0)
    if target.ndim not in (2, 3) or target.shape != prob.shape:
        raise ValueError(f"target and prob must be the same (H, W) or (H, W, 3), got {target.shape} and {prob.shape}")
    h, w = target.shape[:2]
    vertical = w > 1.5 * h

    # Panel scale: native if possible; small pictures grow by an integer factor (crisp pixels,
    # and room for the panel titles); huge ones shrink to stay a sensible image size.
    min_panel, max_w, max_h = 420, 1600, 1100
    if w > max_w or h > max_h:
        scale = min(max_w / w, max_h / h)
    elif w < min_panel:
        scale = float(int(np.ceil(min_panel / w)))
        scale = min(scale, max(1.0, float(int(max_h / h))))
    else:
        scale = 1.0
    pw, ph = max(1, round(w * scale)), max(1, round(h * scale))

    # Layout in pixels at dpi 100, so the axes land exactly on the image's size.
    dpi = 100.0
    margin, gap, panel_title = 18, 14, 30
    top = 50 if title else 8
    if vertical:
        fig_w = pw + 2 * margin
        fig_h = top + 2 * (panel_title + ph) + gap + margin
        boxes = [(margin, margin + ph + gap + panel_title), (margin, margin)]  # (left, bottom) px
    else:
        fig_w = 2 * pw + gap + 2 * margin
        fig_h = top + panel_title + ph + margin
        boxes = [(margin, margin), (margin + pw + gap, margin)]

    fig = _new_figure(fig_w / dpi, fig_h / dpi, dpi=dpi)
    interpolation = "nearest" if scale >= 1.0 else "antialiased"
    panels = ((target, "target"), (prob, prediction_name))
    for (left, bottom), (image, name) in zip(boxes, panels):
        ax = fig.add_axes((left / fig_w, bottom / fig_h, pw / fig_w, ph / fig_h))
        ax.imshow(image, cmap="gray", vmin=0.0, vmax=1.0, interpolation=interpolation, aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        # A thin frame: the white background of the picture would otherwise melt into the page.
        for spine in ax.spines.values():
            spine.set_color("#b0b0b0")
            spine.set_linewidth(0.8)
        ax.set_title(name, fontsize=13, loc="left", pad=7, color="#222222")
    if title:
        fig.text(margin / fig_w, 1.0 - 14 / fig_h, title, fontsize=16, ha="left", va="top", color="#111111")
    _save_png(fig, path)
