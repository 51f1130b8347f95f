"""The report's grid video: seed 0 of every preset training side by side, one shared step counter.

`grid_frames` draws the frames (RGB uint8) with Pillow and fonts.py's DejaVu Sans, so they
look the same on every machine; `write_grid_video` writes them as grid.mp4 and grid.gif
with video.py's writers. Frames are drawn when the writers take them, from predictions read
when needed, so the memory this takes does not grow with the number of evaluations.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from ..captions import BAND_BG, BAND_FG
from ..fonts import font
from ..video import MP4_MAX_FRAMES, LazyFrames, write_gif, write_mp4
from .formatting import hex_rgb, num, preset_colors, seed0

# Grid video: frames per second, and the widest frame (the report column is about 1000 px).
GRID_FPS = 8
GRID_MAX_WIDTH = 1200
GIF_MAX_WIDTH = 800
GRID_MAX_FRAMES = MP4_MAX_FRAMES  # MP4 frames; more are thinned (video.thin: first, last, even spread)
MIN_PANEL_WIDTH = 240  # px; smaller pictures are enlarged by an integer factor (crisp pixels)
MAX_PANEL_HEIGHT = 300  # px; tall pictures are shrunk so the grid stays on one screen
DIVERGED_RGB = (255, 92, 92)
MUTED_RGB = (150, 150, 150)


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def panel_size(height: int, width: int) -> tuple[int, int]:
    """Size (w, h) of one prediction panel: three fit GRID_MAX_WIDTH, aspect kept."""
    max_w = (GRID_MAX_WIDTH - 4 * 12) // 3
    scale = min(max_w / width, MAX_PANEL_HEIGHT / height)
    if scale >= 1.0:
        # Small pictures: an integer factor, at least MIN_PANEL_WIDTH wide when that still fits.
        scale = float(max(1, min(math.floor(scale), math.ceil(MIN_PANEL_WIDTH / width))))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _resize(gray: np.ndarray, size: tuple[int, int]) -> Image.Image:
    img = Image.fromarray(np.ascontiguousarray(gray), "L")
    if img.size == size:
        return img
    # Enlarging: nearest keeps pixels crisp; shrinking: LANCZOS keeps thin strokes visible.
    upscale = size[0] >= img.size[0]
    return img.resize(size, Image.Resampling.NEAREST if upscale else Image.Resampling.LANCZOS)


def _latest(steps: Sequence[int], step: int) -> int | None:
    """Index of the last of `steps` (in order) that is <= `step`, or None."""
    i = bisect.bisect_right(steps, step)
    return i - 1 if i else None


def _steps(pairs: Sequence[tuple[int, Any]]) -> list[int]:
    """The steps of (step, picture) pairs, without reading the pictures of a StoredFrames."""
    steps = getattr(pairs, "steps", None)
    return list(steps) if steps is not None else [s for s, _ in pairs]


def grid_frames(results: dict, frames: dict[str, Sequence[tuple[int, np.ndarray]]], target_gray: np.ndarray) -> tuple[LazyFrames, list[int]]:
    """Frames of the side-by-side video and their steps (the union of all presets' steps).

    Each frame (RGB uint8, width <= GRID_MAX_WIDTH): a header with the title, the shared step
    counter, a progress bar and the target picture; then the presets in rows of three, each
    labelled with its name (in its plot colour) and seed 0's dense accuracy at that step. A
    preset whose frames end early holds its last frame; if its run diverged it is outlined
    and labelled "diverged".

    `frames[preset]`: (step, (H, W) uint8) pairs in step order, any sequence; a lazy one (a run
    folder's `StoredFrames`) is read only at the predictions a drawn frame shows. The frames
    come back as a `LazyFrames`: each is drawn when accessed, so holding them costs nothing.
    """
    meta = results["meta"]
    names = list(results["presets"])
    colors = {n: hex_rgb(c) for n, c in preset_colors(names).items()}
    target_gray = np.asarray(target_gray, dtype=np.uint8)
    height, width = target_gray.shape
    pw, ph = panel_size(height, width)

    gap = 12
    # Rows of three; pictures taller than wide are narrow enough for six in a row.
    cols = 6 if len(names) > 3 and 6 * pw + 7 * gap <= GRID_MAX_WIDTH else 3
    label_size = max(14, min(17, round(pw * 0.045)))
    name_font = font(label_size, bold=True)
    value_font = font(label_size)
    swatch = round(label_size * 0.7)
    # Name and accuracy on one line when they fit side by side, else on two lines.
    widest = max((name_font.getlength(n) for n in names), default=0.0)
    two_line = swatch + 7 + widest + 8 + value_font.getlength("100.0 %") > pw
    line_h = round(label_size * 1.45)
    label_h = _even(line_h * (2 if two_line else 1) + 6)
    rows = max(1, math.ceil(len(names) / cols))
    grid_w = cols * pw + (cols + 1) * gap
    frame_w = _even(max(grid_w, 640))
    header_h = _even(max(64, min(120, frame_w * 0.085)))
    frame_h = _even(header_h + rows * (label_h + ph + gap) + gap)
    x0 = (frame_w - grid_w) // 2 + gap

    title_font = font(max(14, round(header_h * 0.27)), bold=True)
    step_font = font(max(12, round(header_h * 0.21)))
    small_font = font(max(10, round(header_h * 0.15)))
    pad = round(header_h * 0.18)

    # Target thumbnail, right side of the header, with "target" above it.
    thumb_h = header_h - 2 * pad - small_font.size - 4
    thumb_w = max(1, round(width * thumb_h / height))
    if thumb_w > frame_w * 0.4:
        thumb_w = round(frame_w * 0.4)
        thumb_h = max(1, round(height * thumb_w / width))
    thumb = _resize(target_gray, (thumb_w, thumb_h))
    thumb_x = frame_w - pad - thumb_w
    thumb_y = header_h - pad - thumb_h

    # Each preset: its frames, seed 0's accuracy by step, and when (if) it diverged.
    runs = {n: seed0(results["presets"][n]) for n in names}
    history = {n: [(rec["step"], num(rec.get("dense_acc"))) for rec in runs[n].get("history", [])] for n in names}
    history_steps = {n: [s for s, _ in history[n]] for n in names}
    # Steps without reading a picture (StoredFrames knows them), then each preset's panel made
    # when a frame needs it; the last one made is kept, as neighbouring frames mostly show it again.
    steps_of = {n: _steps(frames.get(n, [])) for n in names}
    shown: dict[str, tuple[int, Image.Image]] = {}

    def panel(name: str, idx: int) -> Image.Image:
        kept = shown.get(name)
        if kept is None or kept[0] != idx:
            kept = shown[name] = (idx, _resize(frames[name][idx][1], (pw, ph)))
        return kept[1]

    all_steps = sorted({s for n in names for s in steps_of[n]})
    total = meta.get("steps") or (all_steps[-1] if all_steps else 0)
    title = str(meta.get("title", "OVERFIT reproduction"))

    def draw_frame(k: int) -> np.ndarray:
        step = all_steps[k]
        img = Image.new("RGB", (frame_w, frame_h), BAND_BG)
        draw = ImageDraw.Draw(img)

        # -- header: title, step counter, progress bar, target
        draw.rectangle((0, 0, frame_w, header_h - 1), fill=(14, 14, 14))
        draw.text((pad, pad), title, font=title_font, fill=BAND_FG, anchor="lt")
        draw.text((pad, header_h - pad), f"step {step:,} / {total:,}", font=step_font, fill=BAND_FG, anchor="lb")
        draw.text((thumb_x + thumb_w, thumb_y - 4), "target", font=small_font, fill=MUTED_RGB, anchor="rb")
        img.paste(thumb, (thumb_x, thumb_y))
        bar_w = frame_w * min(1.0, step / total) if total else 0
        draw.rectangle((0, header_h - 3, frame_w, header_h - 1), fill=(48, 48, 48))
        if bar_w > 0:
            draw.rectangle((0, header_h - 3, round(bar_w), header_h - 1), fill=(120, 170, 230))

        # -- panels
        for i, name in enumerate(names):
            r, c = divmod(i, cols)
            x = x0 + c * (pw + gap)
            y = header_h + gap + r * (label_h + ph + gap)
            pairs = steps_of[name]
            idx = _latest(pairs, step)
            last_step = pairs[-1] if pairs else None
            run = runs[name]
            diverged_at = run.get("diverged_step")
            diverged = run.get("status") == "diverged" and (
                (diverged_at is not None and step >= diverged_at) or (last_step is not None and step > last_step)
            )
            hi = _latest(history_steps[name], step)
            acc = history[name][hi][1] if hi is not None else math.nan

            mid_y = y + (line_h // 2 + 3 if two_line else label_h // 2)
            draw.rectangle((x, mid_y - swatch // 2, x + swatch, mid_y - swatch // 2 + swatch), fill=colors[name])
            draw.text((x + swatch + 7, mid_y), name, font=name_font, fill=BAND_FG, anchor="lm")
            if diverged:
                where = f" at {diverged_at:,}" if diverged_at is not None else ""
                options, color = [f"diverged{where}", "diverged"], DIVERGED_RGB
            else:
                value = "—" if math.isnan(acc) else f"{100 * acc:.1f} %"
                options, color = [f"accuracy {value}", value], BAND_FG
            if two_line:
                value = next((t for t in options if value_font.getlength(t) <= pw), options[-1])
                draw.text((x, mid_y + line_h), value, font=value_font, fill=color, anchor="lm")
            else:
                room = pw - swatch - 7 - name_font.getlength(name) - 8
                value = next((t for t in options if value_font.getlength(t) <= room), options[-1])
                draw.text((x + pw, mid_y), value, font=value_font, fill=color, anchor="rm")

            py = y + label_h
            if idx is None:
                draw.rectangle((x, py, x + pw - 1, py + ph - 1), fill=(60, 60, 60))
                draw.text((x + pw // 2, py + ph // 2), "no frame yet", font=value_font, fill=MUTED_RGB, anchor="mm")
            else:
                img.paste(panel(name, idx), (x, py))
            outline = DIVERGED_RGB if diverged else (70, 70, 70)
            width_px = 3 if diverged else 1
            draw.rectangle((x - width_px, py - width_px, x + pw - 1 + width_px, py + ph - 1 + width_px), outline=outline, width=width_px)
        return np.asarray(img)

    return LazyFrames(len(all_steps), draw_frame), all_steps


def write_grid_video(report_dir: Path, results: dict, frames: dict[str, Sequence[tuple[int, np.ndarray]]], target_gray: np.ndarray) -> None:
    """Write `grid_frames` as report_dir/grid.mp4 and grid.gif; nothing when there are no frames.

    At most GRID_MAX_FRAMES frames in the MP4 and video.GIF_MAX_FRAMES in the GIF (video.thin:
    the first, the last and an even spread), each drawn when the writer takes it.
    """
    grid, _ = grid_frames(results, frames, target_gray)
    if grid:
        write_mp4(grid, report_dir / "grid.mp4", fps=GRID_FPS, max_side=GRID_MAX_WIDTH, max_frames=GRID_MAX_FRAMES)
        write_gif(grid, report_dir / "grid.gif", fps=GRID_FPS, max_width=GIF_MAX_WIDTH)
