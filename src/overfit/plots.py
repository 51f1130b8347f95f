"""Figures of a run, as PNG: one training batch (`save_samples_plot`) and the target beside
the prediction (`save_final_plot`).

Figures use `matplotlib.figure.Figure` on an Agg canvas directly (no pyplot, no rcParams
changes) so they can be drawn from a background thread while training runs; `new_figure`
is that one recipe, also used by the report's figures. matplotlib is imported inside the
functions, so `import overfit.plots` stays cheap for commands that draw nothing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from .files import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Scatter colours of `save_samples_plot`: ink dark like the picture, background light but
# still visible on the white axes; class i of a mode's `classes` takes CLASS_COLORS[i].
INK_COLOR = "#1b1b1f"
BACKGROUND_COLOR = "#8cbbe6"
CLASS_COLORS = (INK_COLOR, BACKGROUND_COLOR, "#e15759", "#59a14f", "#f28e2b", "#b07aa1")
# Most points `save_samples_plot` draws: beyond this the picture is a solid cloud anyway, and a
# batch of a million points would take matplotlib minutes and gigabytes. A batch's points are
# random, so its first points are a fair sample of the rest.
MAX_SCATTER_POINTS = 50_000


def new_figure(width_in: float, height_in: float, dpi: float, **kwargs) -> Figure:
    """A white matplotlib Figure of width_in x height_in inches on its own Agg canvas.

    `kwargs` go to `Figure` (e.g. layout="constrained").
    """
    # Figure + FigureCanvasAgg instead of pyplot: no global figure registry, safe off the
    # main thread, and nothing to close.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=dpi, facecolor="white", **kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=fig.dpi, facecolor="white")


def save_samples_plot(
    yx: np.ndarray,
    labels: np.ndarray,
    height: int,
    width: int,
    path: str | os.PathLike,
    classes: tuple[str, ...] = (),
) -> None:
    """Scatter one training batch: points (x, y) = (yx[:, 1], yx[:, 0]) coloured by their target.

    `yx` (N, 2) is in pixel units with y measured upward from the bottom row, so it is plotted
    as-is on [0, width] x [0, height] with equal aspect and the picture appears upright.
    With `classes` (the mode's, e.g. ('ink', 'background')), `labels` (N,) are class indices,
    drawn in CLASS_COLORS (ink dark, background light); without, they are the sampled values
    (N,) or (N, C) in [0, 1], and points take those colours. Written atomically as PNG.
    """
    yx = np.asarray(yx, dtype=np.float64)
    labels = np.asarray(labels)
    colors = None
    if not classes:  # pixel values (N,) or (N, C)
        values = labels.reshape(labels.shape[0], -1) if labels.ndim else labels.reshape(1, 1)
        colors = np.clip(np.repeat(values, 3, axis=1) if values.shape[1] == 1 else values[:, :3], 0.0, 1.0)
        labels = np.zeros(values.shape[0])
    labels = labels.reshape(-1)
    if yx.ndim != 2 or yx.shape[1] != 2 or yx.shape[0] != labels.shape[0]:
        raise ValueError(f"yx must be (N, 2) with N labels, got {yx.shape} and {labels.shape}")
    n = yx.shape[0]
    yx, labels = yx[:MAX_SCATTER_POINTS], labels[:MAX_SCATTER_POINTS]
    colors = None if colors is None else colors[:MAX_SCATTER_POINTS]
    shown = yx.shape[0]

    # Axes about 9 in wide for wide pictures, 5.5 in tall for tall ones; room for title/legend.
    aspect = width / max(height, 1)
    ax_w, ax_h = (9.0, 9.0 / aspect) if aspect >= 9.0 / 5.5 else (5.5 * aspect, 5.5)
    ax_w, ax_h = max(ax_w, 3.0), max(ax_h, 1.5)
    fig = new_figure(ax_w + 1.2, ax_h + 1.3, dpi=120, layout="constrained")
    ax = fig.add_subplot()

    # Marker area shrinks with the batch size so big batches do not become a solid blob.
    s = float(np.clip(8000.0 / max(shown, 1), 0.3, 14.0))
    if colors is not None:
        ax.scatter(yx[:, 1], yx[:, 0], s=s, c=colors, marker="o", linewidths=0, label="pixel value", rasterized=True)
    else:
        for value in reversed(range(len(classes))):  # drawn last, class 0 (ink) stays on top
            pts = yx[labels == value]
            ax.scatter(pts[:, 1], pts[:, 0], s=s, c=CLASS_COLORS[value % len(CLASS_COLORS)], marker="o", linewidths=0,
                       label=f"{classes[value]} ({value})", rasterized=True)

    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels, up)")
    drawn = "" if shown == n else f" ({shown:,} of them shown)"
    ax.set_title(f"one training batch: {n:,} random coordinates{drawn}", loc="left", fontsize=12)
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

    fig = new_figure(fig_w / dpi, fig_h / dpi, dpi=dpi)
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
