"""The sweep report's pictures: the metric against each swept field, parallel coordinates, a grid video of the best runs."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

import numpy as np

from ..files import atomic_path
from ..plots import new_figure
from .spec import SweepSpec


def _save(fig: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, facecolor="white")


def _number(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def metric_vs_field(spec: SweepSpec, table: list[dict[str, Any]], field: str, path: Path) -> None:
    """Each trial's final metric against `field` (dots), with the mean and spread (sd) over trials at each value (line)."""
    key = "final_" + spec.metric
    points = [(r[field], r[key]) for r in table if isinstance(r[key], (int, float))]
    fig = new_figure(5.5, 3.6, 100, layout="constrained")
    ax = fig.add_subplot()
    numeric = all(_number(v) is not None for v, _ in points)
    if numeric:
        xs = [float(v) for v, _ in points]
        ax.scatter(xs, [m for _, m in points], s=14, alpha=0.6, color="#4a7bb7", label="trials")
        if field in spec.random and spec.random[field].kind == "log":
            ax.set_xscale("log")
    else:
        labels = list(dict.fromkeys(str(v) for v, _ in points))
        xs = [labels.index(str(v)) for v, _ in points]
        ax.scatter(xs, [m for _, m in points], s=14, alpha=0.6, color="#4a7bb7", label="trials")
        ax.set_xticks(range(len(labels)), labels)
    groups: dict[float, list[float]] = {}
    for x, (_, m) in zip(xs, points):
        groups.setdefault(float(x), []).append(m)
    if len(groups) < len(points):  # repeated values (seeds, grid): mean and spread per value
        gx = sorted(groups)
        means = [statistics.fmean(groups[x]) for x in gx]
        sds = [statistics.stdev(groups[x]) if len(groups[x]) > 1 else 0.0 for x in gx]
        ax.errorbar(gx, means, yerr=sds, color="#d1495b", marker="o", capsize=3, label="mean ± sd")
    ax.set_xlabel(field)
    ax.set_ylabel(key)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


def parallel_coordinates(spec: SweepSpec, ranked_rows: list[dict[str, Any]], path: Path) -> None:
    """One line per trial across the swept fields (each scaled to [0, 1]) and the metric, coloured by the metric."""
    key = "final_" + spec.metric
    axes = [*spec.grid, *spec.random, *(["seed"] if len(spec.seed_values()) > 1 else []), key]
    columns = []
    ticks: list[list[tuple[float, str]]] = []  # per axis: (height in [0, 1], the value written there)
    for name in axes:
        values = [r.get(name) for r in ranked_rows]
        nums = [_number(v) for v in values]
        if all(n is not None for n in nums):
            logged = name in spec.random and spec.random[name].kind == "log"
            shown = {n: v for n, v in zip(nums, values)}
            nums = [math.log10(n) if logged and n > 0 else n for n in nums]
            low, high = min(nums), max(nums)
            marks = [(low, min(shown)), (high, max(shown))] if high > low else [(low, min(shown))]
        else:
            labels = list(dict.fromkeys(str(v) for v in values))
            nums = [float(labels.index(str(v))) for v in values]
            low, high = min(nums), max(nums)
            marks = [(float(i), label) for i, label in enumerate(labels)]
        scale = (lambda n, low=low, high=high: (n - low) / (high - low) if high > low else 0.5)
        columns.append([scale(n) for n in nums])
        ticks.append([(scale(n), f"{v:.3g}" if isinstance(v, float) else str(v)) for n, v in marks])
    metric = np.array([r[key] for r in ranked_rows], dtype=float)
    span = np.ptp(metric) or 1.0
    shade = (metric - metric.min()) / span
    fig = new_figure(7, 3.6, 100, layout="constrained")
    ax = fig.add_subplot()
    from matplotlib import cm

    for i in range(len(ranked_rows)):
        ax.plot(range(len(axes)), [c[i] for c in columns], color=cm.viridis(shade[i]), alpha=0.7, lw=1.2)
    for x, marks in enumerate(ticks):  # each axis's own values, where its lines meet it
        ax.axvline(x, color="0.75", lw=0.8, zorder=0)
        for y, text in marks:
            ax.annotate(text, (x, y), xytext=(3, 0), textcoords="offset points", fontsize=7, va="center", color="0.25")
    ax.set_xticks(range(len(axes)), axes, rotation=15, fontsize=8)
    ax.set_yticks([])
    ax.set_title(f"colour: {key} (yellow is higher)", fontsize=9)
    _save(fig, path)


def grid_video(best_rows: list[dict[str, Any]], path: Path, cell: int = 256) -> bool:
    """The best runs' frames side by side (each resized to a common cell), as an MP4; False if no run has frames.

    Each tile is made when the writer takes it, from frames read from disk then, so memory does
    not grow with the runs' length; long runs are thinned (video.thin: first, last, even spread).
    """
    from PIL import Image

    from ..runs import RunFolder
    from ..video import LazyFrames, write_mp4

    runs = []
    for row in best_rows:
        folder = RunFolder(row["run_folder"])
        if folder.path.is_dir():
            frames = folder.read_frames(folder.frame_steps()).pictures  # read on access
            if frames:
                runs.append(frames)
    if not runs:
        return False
    # Common size: the first run's aspect ratio, `cell` pixels wide, all in RGB.
    h0, w0 = runs[0][0].shape[:2]
    width, height = cell, max(2, round(cell * h0 / w0))
    length = max(len(frames) for frames in runs)

    def cell_at(frames: Any, i: int) -> np.ndarray:
        picture = frames[min(i, len(frames) - 1)]  # a run stopped early holds its last frame
        image = Image.fromarray(picture).convert("RGB").resize((width, height), Image.NEAREST)
        return np.asarray(image)

    def tile(i: int) -> np.ndarray:
        return np.concatenate([cell_at(frames, i) for frames in runs], axis=1)

    write_mp4(LazyFrames(length, tile), path, fps=4)
    return True
