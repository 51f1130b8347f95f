"""The report's figures: learning curves over seeds and the error-per-frequency-band heatmaps.

Each figure is written twice, as `<stem>.png` and `<stem>.svg`, atomically. Figures are
built with `plots.new_figure` (a Figure on an Agg canvas, never pyplot or rcParams);
matplotlib itself is imported inside the functions. Every preset keeps its colour from
`formatting.preset_colors`, the same as in the grid video and the HTML tables.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .. import metricinfo
from ..files import write_atomic
from ..plots import new_figure
from .formatting import num, preset_colors

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Heatmap colour range of the spectrum figure: 0 = exact; errors above 1.5 all look the same.
SPECTRUM_VMAX = 1.5

FIG_DPI = 144


def _new_figure(width_in: float, height_in: float) -> Figure:
    return new_figure(width_in, height_in, dpi=FIG_DPI, layout="constrained")


def _save_figure(fig: Figure, stem: Path) -> None:
    """Write `stem`.png and `stem`.svg atomically."""
    for fmt in ("png", "svg"):
        buf = io.BytesIO()
        # No date in the metadata: the same results give byte-identical SVGs.
        metadata = {"Date": None} if fmt == "svg" else None
        fig.savefig(buf, format=fmt, dpi=FIG_DPI, facecolor="white", metadata=metadata)
        write_atomic(stem.with_suffix(f".{fmt}"), buf.getvalue())
        # The layout is done: the SVG keeps the PNG's positions instead of solving it again (a second of constrained layout).
        fig.set_layout_engine("none")


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
            table[r, col[rec["step"]]] = num(rec.get(key))
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
            v = num(rec.get(key))
            if not math.isnan(v) and (v > 0 or not positive):
                ends.append((float(rec["step"]), v))
                break
    return ends


def _draw_curves(ax, results: dict, key: str, is_loss: bool) -> tuple[float, bool]:
    """Each preset's mean over seeds of history[key] (and its min-max band) on `ax`; the lowest value and whether a run diverged."""
    presets = results["presets"]
    colors = preset_colors(list(presets))
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
    return low, any_diverged


def _curves_axes(ax, meta: dict, is_loss: bool, low: float, label_y: bool) -> None:
    """Steps on x; accuracy in % (with the majority line) or the loss on a log scale on y."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xlim(0, max(1, meta.get("steps") or 1))
    ax.xaxis.set_major_formatter(_step_formatter())
    ax.set_xlabel("training step", color="#333333")
    if is_loss:
        ax.set_yscale("log")
        loss_name = str(meta.get("loss", "loss")).replace("_", "-")
        if label_y:
            ax.set_ylabel(f"{loss_name} loss on all pixels", color="#333333")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:g}"))
        return
    ax.set_ylim(0.4, 1.005)
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{100 * y:.0f} %"))
    if label_y:
        ax.set_ylabel("accuracy on all pixels", color="#333333")
    majority = num(meta.get("majority_rate"))
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


def _curves_legend(handles: list, labels: list, n_seeds: int, any_diverged: bool) -> tuple[list, list]:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if n_seeds > 1:
        handles.append(Patch(facecolor="#888888", alpha=0.3, linewidth=0))
        labels.append("min–max over seeds")
    if any_diverged:
        handles.append(Line2D([], [], linestyle="none", marker="X", markersize=8, color="#555555", markeredgecolor="white"))
        labels.append("diverged run stops")
    return handles, labels


def _curves_title(meta: dict, is_loss: bool) -> str:
    n_seeds = len(meta.get("seeds", [])) or 1
    over = f", mean over {n_seeds} seeds" if n_seeds > 1 else ""
    return f"Dense {'loss' if is_loss else 'accuracy'} during training{over}"


def curves_figure(results: dict, key: str, stem: Path) -> None:
    """accuracy (key 'dense_acc') or loss (key 'dense_loss', log y) vs step for all presets."""
    meta = results["meta"]
    is_loss = metricinfo.direction(key) == "min"  # the metric registry's: a loss (log scale) rather than a score
    fig = _new_figure(10.0, 4.8)
    ax = fig.add_subplot()
    _style_axes(ax)
    low, any_diverged = _draw_curves(ax, results, key, is_loss)
    _curves_axes(ax, meta, is_loss, low, label_y=True)
    ax.set_title(_curves_title(meta, is_loss), loc="left", fontsize=12, color="#111111")
    handles, labels = _curves_legend(*ax.get_legend_handles_labels(), len(meta.get("seeds", [])), any_diverged)
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9.5, borderaxespad=0.0, handlelength=1.8)
    _save_figure(fig, stem)


def variant_curves_figure(variants: list[tuple[str, dict]], key: str, stem: Path) -> None:
    """`curves_figure` once per variant, side by side on one y scale: a panel per (name, results), two per row."""
    first = variants[0][1]["meta"]
    is_loss = metricinfo.direction(key) == "min"
    cols = min(2, len(variants))
    rows = math.ceil(len(variants) / cols)
    fig = _new_figure(5.4 * cols + 1.6, 3.4 * rows + 0.5)
    axes = fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    any_diverged = False
    for i, ax in enumerate(axes.flat):
        if i >= len(variants):
            ax.set_visible(False)
            continue
        name, results = variants[i]
        _style_axes(ax)
        low, diverged = _draw_curves(ax, results, key, is_loss)
        any_diverged |= diverged
        _curves_axes(ax, results["meta"], is_loss, low, label_y=i % cols == 0)
        ax.set_title(name, loc="left", fontsize=10.5, color="#111111")
    handles, labels = _curves_legend(*axes.flat[0].get_legend_handles_labels(), len(first.get("seeds", [])), any_diverged)
    fig.legend(handles, labels, loc="outside right center", frameon=False, fontsize=9, handlelength=1.8)
    fig.suptitle(_curves_title(first, is_loss) + ", per variant", x=0.01, ha="left", fontsize=12, color="#111111")
    _save_figure(fig, stem)


def spectrum_figure(results: dict, stem: Path) -> None:
    """2 x 3 heatmaps: relative error per frequency band (rows) at each eval step (columns)."""
    import matplotlib

    spectrum = results.get("spectrum") or {}
    names = list(results["presets"])
    colors = preset_colors(names)
    edges = [float(e) for e in spectrum.get("band_edges", [])]
    threshold = num(spectrum.get("threshold"))
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


def inside_figure(results: dict, stem: Path) -> bool:
    """One panel per hidden layer: the fraction of dead units (ReLU presets, solid) and of saturated units (dashed)
    over the steps, one line per preset (seed 0). False (nothing written) when no run recorded them."""
    inside = results.get("inside") or {}
    names = [n for n in results["presets"] if n in inside and inside[n].get("steps")]
    layers = max((len(inside[n].get("units") or []) for n in names), default=0)
    if not layers:
        return False
    colors = preset_colors(list(results["presets"]))
    fig = _new_figure(3.7 * layers + 0.4, 2.9)
    axes = fig.subplots(1, layers, sharey=True, squeeze=False)[0]
    for layer, ax in enumerate(axes):
        _style_axes(ax)
        ax.set_title(f"hidden layer {layer + 1}", loc="left", fontsize=10)
        for name in names:
            data = inside[name]
            for key, style in (("dead", "-"), ("saturated", "--")):
                values = [row[layer] if layer < len(row) else None for row in data.get(key) or []]
                if not values or all(v is None for v in values):
                    continue
                ys = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
                ax.plot(data["steps"], ys, style, color=colors[name], linewidth=1.6,
                        label=f"{name} {key}" if layer == 0 else None)
        ax.xaxis.set_major_formatter(_step_formatter())
        ax.set_xlabel("step", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
    axes[0].set_ylabel("fraction of units", fontsize=9)
    if axes[0].get_legend_handles_labels()[0]:
        fig.legend(loc="outside right center", fontsize=8, frameon=False)
    _save_figure(fig, stem)
    return True
