"""The reproduction report: one folder that shows what `overfit reproduce` measured.

`write_report` renders results the caller has already computed (nothing is measured here):

    report/
      index.html          the report; opens from disk (inline CSS, relative links, no network)
      report.md           the same content in Markdown, images linked
      grid.mp4 / .gif     seed 0 of all six presets training side by side, one shared step counter
      accuracy.png/.svg   dense accuracy vs step: mean over seeds, min-max band, majority line
      loss.png/.svg       dense loss vs step, log scale, same style
      spectrum.png/.svg   error per spatial-frequency band vs step, one heatmap per preset

Conventions:
- Every file is written atomically (`runs.write_atomic`, or video's writers), and index.html
  last, so a folder with an index.html is a complete report.
- Figures use `matplotlib.figure.Figure` on an Agg canvas, never pyplot or rcParams, and give
  every preset the same colour everywhere: curves, heatmap titles, video labels, HTML tables.
- The video uses video.py's DejaVu fonts, so frames look the same on every machine.
- All text that comes from `results` is escaped (html.escape) before it goes into HTML.
"""

from __future__ import annotations

import html
import io
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import video
from .runs import write_atomic

# Verdict -> (badge background, badge text). Green / red / amber, readable as solid pills.
VERDICT_COLORS = {
    "PASS": ("#1a7f37", "#ffffff"),
    "FAIL": ("#cf222e", "#ffffff"),
    "INCONCLUSIVE": ("#e3a008", "#2b1d00"),
}
UNKNOWN_VERDICT = ("#6e7781", "#ffffff")

# One colour per preset, in preset order: matplotlib's qualitative tab10, the most legible
# set of six distinct line colours on white.
PRESET_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")

# Grid video: frames per second, and the widest frame (the report column is about 1000 px).
GRID_FPS = 8
GRID_MAX_WIDTH = 1200
GIF_MAX_WIDTH = 800
MIN_PANEL_WIDTH = 240  # px; smaller pictures are enlarged by an integer factor (crisp pixels)
MAX_PANEL_HEIGHT = 300  # px; tall pictures are shrunk so the grid stays on one screen
DIVERGED_RGB = (255, 92, 92)
MUTED_RGB = (150, 150, 150)

# Heatmap colour range of the spectrum figure: 0 = exact; errors above 1.5 all look the same.
SPECTRUM_VMAX = 1.5

FIG_DPI = 144


# ----------------------------------------------------------------------------- formatting


def _num(value: Any) -> float:
    """A JSON number as float; None, strings and non-finite values become NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


def format_steps(entry: dict) -> str:
    """Table cell for "steps to reach an accuracy", from {"mean", "spread", "reached", "of"}.

    All seeds reached it: "12,000 ± 500" (spread only with two or more seeds); some did:
    "12,000 (1/2 seeds)" (mean over those that did); none did: "not reached".
    """
    mean = _num(entry.get("mean"))
    reached = entry.get("reached")
    of = entry.get("of")
    if math.isnan(mean) or reached == 0:
        return "not reached"
    text = f"{round(mean):,}"
    spread = _num(entry.get("spread"))
    if not math.isnan(spread) and (reached is None or reached >= 2):
        text += f" ± {round(spread):,}"
    if reached is not None and of is not None and reached < of:
        text += f" ({reached}/{of} seeds)"
    return text


def _format_value(value: Any) -> str:
    """A number from the findings' `numbers`/`thresholds`: short, thousands separated."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def _format_seconds(seconds: float) -> str:
    if math.isnan(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _mean_spread(entry: dict | None, scale: float, digits: int, unit: str = "") -> str:
    """'99.12 ± 0.05 %' from {"mean", "spread"}; '—' when the mean is missing."""
    entry = entry or {}
    mean = _num(entry.get("mean"))
    if math.isnan(mean):
        return "—"
    spread = _num(entry.get("spread"))
    text = f"{mean * scale:.{digits}f}"
    if not math.isnan(spread):
        text += f" ± {spread * scale:.{digits}f}"
    return text + unit


def _wall(entry: dict | None) -> str:
    entry = entry or {}
    mean = _num(entry.get("mean"))
    spread = _num(entry.get("spread"))
    text = _format_seconds(mean)
    if not math.isnan(mean) and not math.isnan(spread) and spread >= 0.05 * mean and spread >= 1:
        text += f" ± {_format_seconds(spread)}"
    return text


def _pct_label(key: str) -> str:
    """'0.95' -> '95 %'."""
    try:
        return f"{float(key) * 100:g} %"
    except ValueError:
        return key


def _preset_colors(names: Sequence[str]) -> dict[str, str]:
    return {name: PRESET_COLORS[i % len(PRESET_COLORS)] for i, name in enumerate(names)}


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))


def _seed0(preset: dict) -> dict:
    """The run of seed 0 (the one whose frames are in the video), else the first run."""
    runs = preset.get("runs", [])
    return next((r for r in runs if r.get("seed") == 0), runs[0] if runs else {})


# ----------------------------------------------------------------------------- figures


def _new_figure(width_in: float, height_in: float):
    # Figure + Agg canvas, no pyplot: nothing global, safe off the main thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=FIG_DPI, facecolor="white", layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_figure(fig, stem: Path) -> None:
    """Write `stem`.png and `stem`.svg atomically."""
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        # No date in the metadata: the same results give byte-identical SVGs.
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(buf, format=fmt, dpi=FIG_DPI, facecolor="white", metadata=metadata)
        write_atomic(stem.with_suffix(f".{fmt}"), buf.getvalue())


def _step_formatter():
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda x, _: f"{x / 1000:g}k" if abs(x) >= 1000 else f"{x:g}")


def _style_axes(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9a9a9a")
    ax.tick_params(colors="#444444", labelsize=9)
    ax.grid(True, color="#e6e6e6", linewidth=0.8)
    ax.set_axisbelow(True)


def _seed_curves(runs: list[dict], key: str, positive: bool = False):
    """Steps and the mean, min and max over seeds of history[key] at each step.

    A seed contributes only where it has a finite value (a diverged seed stops early, its
    NaN losses are skipped), so after a divergence the mean is over the seeds still running.
    """
    steps = sorted({rec["step"] for run in runs for rec in run.get("history", [])})
    if not steps:
        return np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0)
    table = np.full((len(runs), len(steps)), np.nan)
    col = {s: i for i, s in enumerate(steps)}
    for r, run in enumerate(runs):
        for rec in run.get("history", []):
            table[r, col[rec["step"]]] = _num(rec.get(key))
    if positive:
        table[table <= 0] = np.nan
    valid = np.isfinite(table)
    count = valid.sum(axis=0)
    keep = count > 0
    mean = np.where(valid, table, 0.0).sum(axis=0)[keep] / count[keep]
    lo = np.where(valid, table, np.inf).min(axis=0)[keep]
    hi = np.where(valid, table, -np.inf).max(axis=0)[keep]
    return np.asarray(steps, dtype=np.float64)[keep], mean, lo, hi


def _diverged_ends(runs: list[dict], key: str, positive: bool = False) -> list[tuple[float, float]]:
    """(step, value) of the last finite point of each diverged seed."""
    ends = []
    for run in runs:
        if run.get("status") != "diverged":
            continue
        for rec in reversed(run.get("history", [])):
            v = _num(rec.get(key))
            if not math.isnan(v) and (v > 0 or not positive):
                ends.append((float(rec["step"]), v))
                break
    return ends


def _curves_figure(results: dict, key: str, stem: Path) -> None:
    """accuracy (key 'dense_acc') or loss (key 'dense_loss', log y) vs step for all presets."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    meta = results["meta"]
    presets = results["presets"]
    colors = _preset_colors(list(presets))
    is_loss = key == "dense_loss"
    fig = _new_figure(10.0, 4.8)
    ax = fig.add_subplot()
    _style_axes(ax)

    low = math.inf
    any_diverged = False
    for name, preset in presets.items():
        runs = preset.get("runs", [])
        steps, mean, lo, hi = _seed_curves(runs, key, positive=is_loss)
        if steps.size == 0:
            continue
        color = colors[name]
        if len(runs) > 1:
            ax.fill_between(steps, lo, hi, color=color, alpha=0.16, linewidth=0)
        ax.plot(steps, mean, color=color, linewidth=1.8, label=name, solid_capstyle="round")
        ends = _diverged_ends(runs, key, positive=is_loss)
        if ends:
            any_diverged = True
            xs, ys = zip(*ends)
            ax.plot(xs, ys, linestyle="none", marker="X", markersize=8, color=color, markeredgecolor="white", markeredgewidth=0.8, zorder=5)
        low = min(low, float(np.min(lo)))

    ax.set_xlim(0, max(1, meta.get("steps") or 1))
    ax.xaxis.set_major_formatter(_step_formatter())
    ax.set_xlabel("training step", color="#333333")
    n_seeds = len(meta.get("seeds", [])) or 1
    over = f", mean over {n_seeds} seeds" if n_seeds > 1 else ""
    if is_loss:
        ax.set_yscale("log")
        loss_name = str(meta.get("loss", "loss")).replace("_", "-")
        ax.set_ylabel(f"{loss_name} loss on all pixels", color="#333333")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        ax.set_title(f"Dense loss during training{over}", loc="left", fontsize=12, color="#111111")
    else:
        ax.set_ylim(0.4, 1.005)
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{100 * y:.0f} %"))
        ax.set_ylabel("accuracy on all pixels", color="#333333")
        ax.set_title(f"Dense accuracy during training{over}", loc="left", fontsize=12, color="#111111")
        majority = _num(meta.get("majority_rate"))
        if not math.isnan(majority):
            ax.axhline(majority, color="#8a8a8a", linestyle=(0, (5, 4)), linewidth=1.1, zorder=1)
            # Label at the right end: early on every curve starts near the majority rate.
            ax.annotate(
                f"majority class ({100 * majority:.1f} %)",
                xy=(0.995, majority),
                xycoords=("axes fraction", "data"),
                xytext=(0, 4),
                textcoords="offset points",
                ha="right",
                fontsize=8.5,
                color="#6a6a6a",
            )
        if low < 0.4:
            ax.text(0.995, 0.01, "curves below 40 % run off the bottom", transform=ax.transAxes, ha="right", va="bottom", fontsize=8, color="#8a8a8a")

    handles, labels = ax.get_legend_handles_labels()
    if n_seeds > 1:
        handles.append(Patch(facecolor="#888888", alpha=0.3, linewidth=0))
        labels.append("min–max over seeds")
    if any_diverged:
        handles.append(Line2D([], [], linestyle="none", marker="X", markersize=8, color="#555555", markeredgecolor="white"))
        labels.append("diverged run stops")
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9.5, borderaxespad=0.0, handlelength=1.8)
    _save_figure(fig, stem)


def _spectrum_figure(results: dict, stem: Path) -> None:
    """2 x 3 heatmaps: relative error per frequency band (rows) at each eval step (columns)."""
    import matplotlib

    spectrum = results.get("spectrum") or {}
    names = list(results["presets"])
    colors = _preset_colors(names)
    edges = [float(e) for e in spectrum.get("band_edges", [])]
    threshold = _num(spectrum.get("threshold"))
    steps_total = max(1, results["meta"].get("steps") or 1)
    cmap = matplotlib.colormaps["magma"].with_extremes(bad="#d8d8d8")

    rows = max(1, math.ceil(len(names) / 3))
    fig = _new_figure(11.5, 2.45 * rows + 0.9)
    axes = fig.subplots(rows, 3, sharex=True, sharey=True, squeeze=False)
    image = None
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.set_visible(False)
            continue
        name = names[i]
        data = spectrum.get("presets", {}).get(name) or {}
        steps = np.asarray(data.get("steps", []), dtype=np.float64)
        errors = np.asarray(data.get("errors", []), dtype=np.float64)  # (n_steps, n_bands), None -> NaN
        ax.set_title(name, loc="left", fontsize=11, fontweight="bold", color=colors[name])
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(colors="#444444", labelsize=8.5, length=3)
        if steps.size == 0 or errors.ndim != 2 or errors.shape[0] != steps.size:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="#888888")
            continue
        n_bands = errors.shape[1]
        # Cell edges halfway between evaluations, so each column is centred on its step.
        if steps.size > 1:
            mid = (steps[1:] + steps[:-1]) / 2
            x_edges = np.concatenate([[steps[0] - (mid[0] - steps[0])], mid, [steps[-1] + (steps[-1] - mid[-1])]])
        else:
            x_edges = np.array([steps[0] - 0.5, steps[0] + 0.5])
        values = np.ma.masked_invalid(np.clip(errors.T, 0.0, SPECTRUM_VMAX))
        image = ax.pcolormesh(x_edges, np.arange(n_bands + 1), values, cmap=cmap, vmin=0.0, vmax=SPECTRUM_VMAX, shading="flat", rasterized=True)
        # White dot: the first evaluation at which a band's error fell below the threshold.
        first = data.get("first_below") or []
        dots = [(float(s), b + 0.5) for b, s in enumerate(first) if s is not None]
        if dots:
            xs, ys = zip(*dots)
            ax.scatter(xs, ys, s=22, color="white", edgecolors="#111111", linewidths=0.7, zorder=3, clip_on=False)
        ax.set_xlim(min(0.0, x_edges[0]), max(steps_total, x_edges[-1]))
        ax.set_ylim(0, n_bands)
        ax.xaxis.set_major_formatter(_step_formatter())
        if len(edges) == n_bands + 1:
            ax.set_yticks(np.arange(n_bands + 1))
            ax.set_yticklabels([f"{e:.3g}" for e in edges])
        else:
            ax.set_yticks(np.arange(n_bands) + 0.5)
            ax.set_yticklabels([str(b) for b in range(n_bands)])
    for ax in axes[:, 0]:
        ax.set_ylabel("cycles / pixel" if edges else "band", fontsize=9, color="#333333")
    for ax in axes[-1, :]:
        ax.set_xlabel("training step", fontsize=9, color="#333333")

    fig.suptitle("Error per spatial-frequency band during training (low frequencies at the bottom)", x=0.01, ha="left", fontsize=12, color="#111111")
    if image is not None:
        cbar = fig.colorbar(image, ax=axes, shrink=0.85, aspect=30, pad=0.015)
        cbar.set_label("relative band error", fontsize=9, color="#333333")
        cbar.outline.set_visible(False)
        cbar.ax.tick_params(labelsize=8.5, colors="#444444")
        ticks = np.arange(0.0, SPECTRUM_VMAX + 1e-9, 0.5)
        cbar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks[:-1]] + [f"≥ {ticks[-1]:g}"])
        if not math.isnan(threshold) and 0 < threshold < SPECTRUM_VMAX:
            cbar.ax.axhline(threshold, color="white", linewidth=1.2, linestyle=(0, (3, 2)))
    _save_figure(fig, stem)


# ----------------------------------------------------------------------------- grid video


def _bold_font(size: int) -> ImageFont.FreeTypeFont:
    # video.py's font handling, bold face from the same matplotlib font folder.
    path = str(Path(video._font_path()).with_name("DejaVuSans-Bold.ttf"))
    return ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.BASIC)


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def _panel_size(height: int, width: int) -> tuple[int, int]:
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


def _latest(pairs: Sequence[tuple[int, Any]], step: int) -> int | None:
    """Index of the last pair whose step <= `step` (pairs in step order), or None."""
    found = None
    for i, (s, _) in enumerate(pairs):
        if s > step:
            break
        found = i
    return found


def grid_frames(results: dict, frames: dict[str, list[tuple[int, np.ndarray]]], target_gray: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """Frames of the side-by-side video and their steps (the union of all presets' steps).

    Each frame (RGB uint8, width <= GRID_MAX_WIDTH): a header with the title, the shared step
    counter, a progress bar and the target picture; then the presets in rows of three, each
    labelled with its name (in its plot colour) and seed 0's dense accuracy at that step. A
    preset whose frames end early holds its last frame; if its run diverged it is outlined
    and labelled "diverged".
    """
    meta = results["meta"]
    names = list(results["presets"])
    colors = {n: _hex_rgb(c) for n, c in _preset_colors(names).items()}
    target_gray = np.asarray(target_gray, dtype=np.uint8)
    height, width = target_gray.shape
    pw, ph = _panel_size(height, width)

    gap = 12
    # Rows of three; pictures taller than wide are narrow enough for six in a row.
    cols = 6 if len(names) > 3 and 6 * pw + 7 * gap <= GRID_MAX_WIDTH else 3
    label_size = max(14, min(17, round(pw * 0.045)))
    name_font = _bold_font(label_size)
    value_font = video._font(label_size)
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

    title_font = _bold_font(max(14, round(header_h * 0.27)))
    step_font = video._font(max(12, round(header_h * 0.21)))
    small_font = video._font(max(10, round(header_h * 0.15)))
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
    runs = {n: _seed0(results["presets"][n]) for n in names}
    history = {n: [(rec["step"], _num(rec.get("dense_acc"))) for rec in runs[n].get("history", [])] for n in names}
    panels: dict[str, list[tuple[int, Image.Image]]] = {n: [(s, _resize(g, (pw, ph))) for s, g in frames.get(n, [])] for n in names}
    all_steps = sorted({s for n in names for s, _ in frames.get(n, [])})
    total = meta.get("steps") or (all_steps[-1] if all_steps else 0)
    title = str(meta.get("title", "OVERFIT reproduction"))

    out: list[np.ndarray] = []
    for step in all_steps:
        img = Image.new("RGB", (frame_w, frame_h), video.BAND_BG)
        draw = ImageDraw.Draw(img)

        # -- header: title, step counter, progress bar, target
        draw.rectangle((0, 0, frame_w, header_h - 1), fill=(14, 14, 14))
        draw.text((pad, pad), title, font=title_font, fill=video.BAND_FG, anchor="lt")
        draw.text((pad, header_h - pad), f"step {step:,} / {total:,}", font=step_font, fill=video.BAND_FG, anchor="lb")
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
            pairs = panels[name]
            idx = _latest(pairs, step)
            last_step = pairs[-1][0] if pairs else None
            run = runs[name]
            diverged_at = run.get("diverged_step")
            diverged = run.get("status") == "diverged" and (
                (diverged_at is not None and step >= diverged_at) or (last_step is not None and step > last_step)
            )
            hi = _latest(history[name], step)
            acc = history[name][hi][1] if hi is not None else math.nan

            mid_y = y + (line_h // 2 + 3 if two_line else label_h // 2)
            draw.rectangle((x, mid_y - swatch // 2, x + swatch, mid_y - swatch // 2 + swatch), fill=colors[name])
            draw.text((x + swatch + 7, mid_y), name, font=name_font, fill=video.BAND_FG, anchor="lm")
            if diverged:
                where = f" at {diverged_at:,}" if diverged_at is not None else ""
                options, color = [f"diverged{where}", "diverged"], DIVERGED_RGB
            else:
                value = "—" if math.isnan(acc) else f"{100 * acc:.1f} %"
                options, color = [f"accuracy {value}", value], video.BAND_FG
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
                img.paste(pairs[idx][1], (x, py))
            outline = DIVERGED_RGB if diverged else (70, 70, 70)
            width_px = 3 if diverged else 1
            draw.rectangle((x - width_px, py - width_px, x + pw - 1 + width_px, py + ph - 1 + width_px), outline=outline, width=width_px)
        out.append(np.asarray(img))
    return out, all_steps


# ----------------------------------------------------------------------------- HTML

CSS = """
:root { --ink: #1f2328; --muted: #656d76; --line: #d8dee4; --soft: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: #eef0f3; color: var(--ink);
  font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", "Helvetica Neue", Helvetica, Arial, sans-serif; }
main { max-width: 1120px; margin: 32px auto; background: #fff; padding: 44px 56px 36px;
  border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.08), 0 8px 24px rgba(0,0,0,.05); }
h1 { font-size: 30px; line-height: 1.2; margin: 0 0 6px; letter-spacing: -0.01em; }
h2 { font-size: 20px; margin: 40px 0 14px; padding-top: 22px; border-top: 1px solid var(--line); }
h3 { font-size: 16px; margin: 0; line-height: 1.35; }
p { margin: 0 0 12px; }
a { color: #0969da; text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, .mono { font-family: "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; font-size: 12.5px; }
.meta { color: var(--muted); font-size: 14px; margin-bottom: 18px; }
.meta span + span::before { content: "·"; margin: 0 8px; color: #b0b7bf; }
.tally { display: flex; gap: 8px; margin: 0 0 20px; flex-wrap: wrap; }
.intro { max-width: 860px; }
.presets { display: grid; grid-template-columns: max-content 1fr; gap: 3px 14px; margin: 14px 0 0; font-size: 14px; }
.presets dt { font-weight: 600; white-space: nowrap; }
.presets dd { margin: 0; color: var(--muted); }
.dot { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 7px; vertical-align: 0; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 999px; font-size: 11.5px; font-weight: 700;
  letter-spacing: .05em; white-space: nowrap; line-height: 1.6; }
.findings { display: grid; grid-template-columns: repeat(auto-fill, minmax(460px, 1fr)); gap: 16px; }
.card { border: 1px solid var(--line); border-left-width: 5px; border-radius: 8px; padding: 14px 18px 12px; }
.card header { display: flex; justify-content: space-between; align-items: flex-start; gap: 12px; margin-bottom: 8px; }
.card .num { color: var(--muted); font-weight: 600; margin-right: 4px; }
.card p { font-size: 14.5px; }
.kv { display: grid; grid-template-columns: max-content 1fr; gap: 1px 14px; margin: 0; font-size: 12.5px;
  background: var(--soft); border-radius: 6px; padding: 8px 12px; }
.kv dt { font-family: "SFMono-Regular", Menlo, Consolas, "DejaVu Sans Mono", monospace; color: var(--muted); }
.kv dd { margin: 0; font-variant-numeric: tabular-nums; font-weight: 600; }
.kv .group { grid-column: 1 / -1; font-size: 10.5px; text-transform: uppercase; letter-spacing: .08em;
  color: #8c959f; font-weight: 700; margin-top: 4px; }
.kv .group:first-child { margin-top: 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; font-variant-numeric: tabular-nums; }
th, td { padding: 7px 10px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: middle; }
thead th { border-bottom: 2px solid var(--line); font-size: 12px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); font-weight: 700; white-space: nowrap; }
thead tr.super th { border-bottom: none; text-align: center; padding-bottom: 0; }
thead tr.super th.span { border-bottom: 1px solid var(--line); }
td.n, th.n { text-align: right; white-space: nowrap; }
td.c, th.c { text-align: center; }
td.none { color: #9aa1a9; }
td.bad { color: #cf222e; font-weight: 600; }
td.ok { color: #1a7f37; }
tbody tr:hover { background: #fafbfc; }
figure { margin: 0 0 26px; }
figure img, figure video { display: block; width: 100%; height: auto; border-radius: 6px; }
figure video { background: #181818; }
figcaption { color: var(--muted); font-size: 13.5px; margin-top: 8px; }
.files { font-size: 13px; color: var(--muted); }
details { border: 1px solid var(--line); border-radius: 8px; margin: 0 0 10px; }
details > summary { cursor: pointer; padding: 9px 14px; font-weight: 600; }
details > summary .desc { font-weight: 400; color: var(--muted); }
details[open] > summary { border-bottom: 1px solid var(--line); }
details pre { margin: 0; padding: 12px 16px; background: var(--soft); overflow-x: auto; line-height: 1.45;
  border-radius: 0 0 8px 8px; }
details .runs { padding: 8px 16px; font-size: 13px; color: var(--muted); }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 28px; }
.two table td:first-child { color: var(--muted); width: 38%; }
footer { margin-top: 36px; color: #8c959f; font-size: 12.5px; }
@media (max-width: 900px) { main { padding: 24px 18px; margin: 0; border-radius: 0; } .two { grid-template-columns: 1fr; }
  .findings { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } main { box-shadow: none; margin: 0; max-width: none; } }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _badge(verdict: str | None) -> str:
    if verdict is None:
        return '<span class="none">—</span>'
    bg, fg = VERDICT_COLORS.get(verdict, UNKNOWN_VERDICT)
    return f'<span class="badge" style="background:{bg};color:{fg}">{_e(verdict)}</span>'


def _dot(color: str) -> str:
    return f'<span class="dot" style="background:{color}"></span>'


_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _count(n: int) -> str:
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def _intro(meta: dict, n_presets: int, n_findings: int) -> str:
    """The paragraph that says what the experiment is (plain text)."""
    seeds = meta.get("seeds", [])
    seed_text = f"{_count(len(seeds))} seed{'s' if len(seeds) != 1 else ''} ({', '.join(str(s) for s in seeds)})"
    majority = _num(meta.get("majority_rate"))
    loss = str(meta.get("loss", "")).replace("_", "-")
    text = (
        f"In the OVERFIT experiment a small multilayer perceptron learns one black-and-white picture, "
        f"{meta.get('target', 'a target')} at {meta.get('width', '?')} × {meta.get('height', '?')} pixels: "
        f"it maps the coordinates of a pixel to the probability that the pixel is ink or background, and is "
        f"trained on random batches of coordinates with the {loss} loss. Every {meta.get('eval_every', 0):,} steps "
        f"it is evaluated on every pixel (dense accuracy and IoU of the ink). {_count(n_presets).capitalize()} presets vary the "
        f"activation function, the scaling of the input coordinates and batch normalisation; each was trained "
        f"for {meta.get('steps', 0):,} steps with {seed_text}, and {_count(n_findings)} findings of the original "
        f"experiment are judged against the measurements below."
    )
    if not math.isnan(majority):
        text += f" Predicting the majority class everywhere already scores {100 * majority:.1f} %, so accuracy only means something above that."
    return text


def _step_keys(table: list[dict]) -> list[str]:
    return list(table[0].get("steps_to", {})) if table else []


def _status_class(status: str) -> str:
    return "bad" if "diverged" in status or "fail" in status else "ok"


def _kv_html(finding: dict) -> str:
    parts = []
    for group, key in (("measured", "numbers"), ("thresholds", "thresholds")):
        items = finding.get(key) or {}
        if not items:
            continue
        parts.append(f'<div class="group">{group}</div>')
        parts += [f"<dt>{_e(k)}</dt><dd>{_e(_format_value(v))}</dd>" for k, v in items.items()]
    return f'<dl class="kv">{"".join(parts)}</dl>' if parts else ""


def _finding_html(finding: dict) -> str:
    verdict = finding.get("verdict")
    border = VERDICT_COLORS.get(verdict, UNKNOWN_VERDICT)[0]
    return (
        f'<article class="card" style="border-left-color:{border}">'
        f'<header><h3><span class="num">{_e(finding.get("id", ""))}.</span>{_e(finding.get("title", ""))}</h3>{_badge(verdict)}</header>'
        f'<p>{_e(finding.get("summary", ""))}</p>{_kv_html(finding)}</article>'
    )


def _variant_verdict(variant: dict, finding_id: Any) -> str | None:
    verdicts = variant.get("verdicts", {})
    return verdicts.get(str(finding_id), verdicts.get(finding_id))


def _variants_html(findings: list[dict], variants: list[dict]) -> str:
    head = "".join(f'<th class="c">{_e(v.get("name", ""))}</th>' for v in variants)
    rows = []
    for f in findings:
        cells = "".join(f'<td class="c">{_badge(_variant_verdict(v, f.get("id")))}</td>' for v in variants)
        rows.append(f'<tr><td><span class="num">{_e(f.get("id", ""))}.</span> {_e(f.get("title", ""))}</td><td class="c">{_badge(f.get("verdict"))}</td>{cells}</tr>')
    return (
        "<h2>Does each finding hold under other settings?</h2>"
        "<p>The same six findings judged again with one setting changed for every preset.</p>"
        f'<table id="variants-table"><thead><tr><th>finding</th><th class="c">default</th>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table>"
    )


def _steps_table_html(table: list[dict], colors: dict[str, str]) -> str:
    keys = _step_keys(table)
    sub = "".join(f'<th class="n">{_e(_pct_label(k))}</th>' for k in keys)
    rows = []
    for row in table:
        name = row.get("preset", "")
        cells = []
        for k in keys:
            text = format_steps(row.get("steps_to", {}).get(k, {}))
            cells.append(f'<td class="n{" none" if text == "not reached" else ""}">{_e(text)}</td>')
        status = str(row.get("status", ""))
        rows.append(
            f"<tr><td>{_dot(colors.get(name, '#888'))}<strong>{_e(name)}</strong></td>{''.join(cells)}"
            f'<td class="n">{_e(_mean_spread(row.get("final_acc"), 100, 2, " %"))}</td>'
            f'<td class="n">{_e(_mean_spread(row.get("final_iou"), 1, 3))}</td>'
            f'<td class="n">{_e(_wall(row.get("wall_seconds")))}</td>'
            f'<td class="{_status_class(status)}">{_e(status)}</td></tr>'
        )
    return (
        '<table id="steps-table"><thead>'
        f'<tr class="super"><th></th><th class="span" colspan="{len(keys)}">steps to reach accuracy</th><th colspan="4"></th></tr>'
        f'<tr><th>preset</th>{sub}<th class="n">final accuracy</th><th class="n">final IoU</th><th class="n">wall time</th><th>status</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table>"
    )


def _configs_html(results: dict) -> str:
    parts = []
    for name, preset in results["presets"].items():
        runs = []
        for run in preset.get("runs", []):
            label = f"seed {run.get('seed')}"
            state = run.get("status", "")
            if state == "diverged" and run.get("diverged_step") is not None:
                state += f" at step {run['diverged_step']:,}"
            state += f", {_format_seconds(_num(run.get('wall_seconds')))}"
            if run.get("run_dir"):
                # run_dir is relative to the report's parent folder.
                label = f'<a href="../{_e(run["run_dir"])}/">{_e(label)}</a>'
            else:
                label = _e(label)
            runs.append(f"{label} ({_e(state)})")
        config = json.dumps(preset.get("config", {}), indent=2)
        parts.append(
            f'<details><summary>{_e(name)} <span class="desc">— {_e(preset.get("description", ""))}</span></summary>'
            f'<div class="runs">runs: {" · ".join(runs)}</div><pre>{_e(config)}</pre></details>'
        )
    return "".join(parts)


def _rows_html(items: dict) -> str:
    return "".join(f"<tr><td>{_e(k)}</td><td>{_e(_format_value(v))}</td></tr>" for k, v in items.items())


def _run_facts(meta: dict) -> dict[str, Any]:
    return {
        "command": meta.get("command", ""),
        "started": str(meta.get("started", "")).replace("T", " "),
        "wall time": _format_seconds(_num(meta.get("wall_seconds"))),
        "init": meta.get("init", ""),
        "loss": meta.get("loss", ""),
    }


def _tally(findings: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.get("verdict", "?")] = counts.get(f.get("verdict", "?"), 0) + 1
    return counts


def _html(results: dict) -> str:
    meta = results["meta"]
    presets = results["presets"]
    colors = _preset_colors(list(presets))
    findings = results.get("findings", [])
    variants = results.get("variants") or []
    title = str(meta.get("title", "OVERFIT reproduction"))
    threshold = _num((results.get("spectrum") or {}).get("threshold"))
    edges = (results.get("spectrum") or {}).get("band_edges") or []

    meta_bits = [
        str(meta.get("target", "")),
        f"{meta.get('width', '?')} × {meta.get('height', '?')} px",
        f"{meta.get('steps', 0):,} steps",
        f"seeds {', '.join(str(s) for s in meta.get('seeds', []))}",
        str(meta.get("started", "")).replace("T", " ")[:16],
        f"took {_format_seconds(_num(meta.get('wall_seconds')))}",
    ]
    tally = "".join(f"{_badge(v)}<span style='margin:0 10px 0 4px'>× {n}</span>" for v, n in _tally(findings).items())
    preset_list = "".join(
        f"<dt>{_dot(colors[n])}{_e(n)}</dt><dd>{_e(p.get('description', ''))}</dd>" for n, p in presets.items()
    )
    n_seeds = len(meta.get("seeds", []))
    band_text = ""
    if len(edges) >= 2:
        band_text = f" {len(edges) - 1} bands from {edges[0]:.3g} to {edges[-1]:.3g} cycles per pixel."
    threshold_text = f"{threshold:g}" if not math.isnan(threshold) else "the threshold"

    body = [
        f"<header><h1>{_e(title)}</h1>",
        f'<div class="meta">{"".join(f"<span>{_e(b)}</span>" for b in meta_bits if b)}</div>',
        f'<div class="tally">{tally}</div></header>',
        f'<section class="intro"><p>{_e(_intro(meta, len(presets), len(findings)))}</p>',
        f'<dl class="presets">{preset_list}</dl></section>',
        "<h2>Findings</h2>",
        f'<div class="findings">{"".join(_finding_html(f) for f in findings)}</div>',
    ]
    if variants:
        body.append(_variants_html(findings, variants))
    body += [
        "<h2>Training, side by side</h2>",
        '<figure><video src="grid.mp4" autoplay loop muted controls playsinline>'
        '<img src="grid.gif" alt="the six presets training side by side"></video>'
        "<figcaption>Seed 0 of each preset: the predicted probability of background on every pixel "
        "(white = background, black = ink, gray = undecided), one frame per evaluation. "
        'Also as <a href="grid.gif">an animated GIF</a> and <a href="grid.mp4">MP4</a>.</figcaption></figure>',
        "<h2>Learning curves</h2>",
        '<figure><a href="accuracy.svg"><img src="accuracy.png" alt="dense accuracy vs step"></a>'
        f"<figcaption>Accuracy on all pixels, mean over {n_seeds} seed{'s' if n_seeds != 1 else ''}"
        f"{' with the min–max range shaded' if n_seeds > 1 else ''}. The dashed line is the majority "
        'class: predicting background everywhere. <a href="accuracy.svg">SVG</a></figcaption></figure>',
        '<figure><a href="loss.svg"><img src="loss.png" alt="dense loss vs step"></a>'
        '<figcaption>Loss on all pixels, log scale, same layout. <a href="loss.svg">SVG</a></figcaption></figure>',
        "<h2>What is learned first: error per frequency band</h2>",
        '<figure><a href="spectrum.svg"><img src="spectrum.png" alt="band error heatmaps"></a>'
        "<figcaption>The error of the prediction in each band of spatial frequency, relative to the "
        f"target's content in that band (0 = exact; clipped at {SPECTRUM_VMAX:g}).{_e(band_text)} "
        f"White dots: the first evaluation at which a band's error fell below {_e(threshold_text)}; "
        'gray cells: no value (e.g. after a divergence). <a href="spectrum.svg">SVG</a></figcaption></figure>',
        "<h2>Speed and final quality</h2>",
        _steps_table_html(results.get("table", []), colors),
        '<p class="files" style="margin-top:10px">Steps to reach an accuracy: mean ± half the range over the seeds '
        "that reached it; final accuracy and IoU after the last step; wall time per run.</p>",
        "<h2>Exact configurations</h2>",
        _configs_html(results),
        "<h2>Machine and versions</h2>",
        '<div class="two"><div><table><tbody>',
        _rows_html({**_run_facts(meta), **(meta.get("machine") or {})}),
        "</tbody></table></div><div><table><tbody>",
        _rows_html(meta.get("versions") or {}),
        "</tbody></table></div></div>",
        f"<footer>Generated by overfit {_e((meta.get('versions') or {}).get('overfit', ''))} · "
        'all numbers also in <a href="results.json">results.json</a> next to this report.</footer>',
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head>\n<body><main>\n" + "\n".join(body) + "\n</main></body></html>\n"
    )


# ----------------------------------------------------------------------------- Markdown


def _md(text: Any) -> str:
    """Text for a Markdown table cell: pipes escaped, no newlines."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _markdown(results: dict) -> str:
    meta = results["meta"]
    presets = results["presets"]
    findings = results.get("findings", [])
    variants = results.get("variants") or []
    table = results.get("table", [])
    title = str(meta.get("title", "OVERFIT reproduction"))
    out = [f"# {title}", "", _intro(meta, len(presets), len(findings)), ""]
    out += [f"- **{name}**: {p.get('description', '')}" for name, p in presets.items()]
    out += ["", "## Findings", ""]
    for f in findings:
        out += [f"### {f.get('id', '')}. {f.get('title', '')} — **{f.get('verdict', '')}**", "", str(f.get("summary", "")), ""]
        for key, label in (("numbers", "measured"), ("thresholds", "threshold")):
            for k, v in (f.get(key) or {}).items():
                out.append(f"- {label} `{k}`: {_format_value(v)}")
        out.append("")
    if variants:
        out += ["## Does each finding hold under other settings?", ""]
        out.append("| finding | default | " + " | ".join(_md(v.get("name", "")) for v in variants) + " |")
        out.append("|---|---|" + "---|" * len(variants))
        for f in findings:
            cells = [_md(_variant_verdict(v, f.get("id")) or "—") for v in variants]
            out.append(f"| {f.get('id', '')}. {_md(f.get('title', ''))} | {f.get('verdict', '')} | " + " | ".join(cells) + " |")
        out.append("")
    out += [
        "## Training, side by side",
        "",
        "![the six presets training side by side](grid.gif)",
        "",
        "Seed 0 of each preset, one frame per evaluation ([MP4](grid.mp4), [GIF](grid.gif)).",
        "",
        "## Learning curves",
        "",
        "![dense accuracy vs step](accuracy.png)",
        "",
        "![dense loss vs step](loss.png)",
        "",
        "## Error per frequency band",
        "",
        "![band error heatmaps](spectrum.png)",
        "",
        "## Speed and final quality",
        "",
    ]
    keys = _step_keys(table)
    out.append("| preset | " + " | ".join(f"steps to {_pct_label(k)}" for k in keys) + " | final accuracy | final IoU | wall time | status |")
    out.append("|---|" + "---:|" * (len(keys) + 3) + "---|")
    for row in table:
        cells = [format_steps(row.get("steps_to", {}).get(k, {})) for k in keys]
        cells += [_mean_spread(row.get("final_acc"), 100, 2, " %"), _mean_spread(row.get("final_iou"), 1, 3), _wall(row.get("wall_seconds")), row.get("status", "")]
        out.append(f"| {_md(row.get('preset', ''))} | " + " | ".join(_md(c) for c in cells) + " |")
    out += ["", "## Exact configurations", ""]
    for name, p in presets.items():
        out += [f"<details><summary>{html.escape(name)}</summary>", "", "```json", json.dumps(p.get("config", {}), indent=2), "```", "", "</details>", ""]
    out += ["## Machine and versions", "", "| | |", "|---|---|"]
    facts = {**_run_facts(meta), **(meta.get("machine") or {}), **(meta.get("versions") or {})}
    out += [f"| {_md(k)} | {_md(_format_value(v))} |" for k, v in facts.items()]
    out.append("")
    return "\n".join(out)


# ----------------------------------------------------------------------------- entry point


def write_report(report_dir: Path, results: dict, frames: dict[str, list[tuple[int, np.ndarray]]], target_gray: np.ndarray) -> None:
    """Write the reproduction report (see the module docstring for the files) into `report_dir`.

    `results`: the JSON-able dict of `overfit reproduce` (meta, presets with runs and
    histories, table, spectrum, findings, variants). `frames[preset]`: (step, (H, W) uint8)
    predictions of seed 0 in step order. `target_gray`: (H, W) uint8 target picture.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)

    _curves_figure(results, "dense_acc", report_dir / "accuracy")
    _curves_figure(results, "dense_loss", report_dir / "loss")
    _spectrum_figure(results, report_dir / "spectrum")

    grid, _ = grid_frames(results, frames, target_gray)
    if grid:
        video.write_mp4(grid, report_dir / "grid.mp4", fps=GRID_FPS)
        video.write_gif(grid, report_dir / "grid.gif", fps=GRID_FPS, max_width=GIF_MAX_WIDTH)

    write_atomic(report_dir / "report.md", _markdown(results))
    # Last: a folder with an index.html holds a complete report.
    write_atomic(report_dir / "index.html", _html(results))
