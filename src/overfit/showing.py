"""How a training result shows itself in a notebook (`TrainResult._repr_html_`): plain HTML, pictures embedded.

    overfit.train(...)      # as a cell's last expression: its headline, the network's prediction, the curves

(A config's own view, its fields in a table, is `configio.fields_html`.)

Nothing here trains or reads a file: the prediction is one pass over the picture's pixels, in
chunks; the curves are the result's own history.
"""

from __future__ import annotations

import base64
import html
import io
from typing import TYPE_CHECKING, Any

from . import metricinfo
from .images import png_bytes, to_uint8
from .modes import get_mode

if TYPE_CHECKING:
    from .training import TrainResult

CHUNK = 65_536  # pixels per forward pass of the prediction
MAX_SIDE = 1024  # the prediction is shown at most this wide or high (a larger picture is sampled on a coarser grid)


def prediction(result: TrainResult) -> Any:
    """The network's picture of the whole target as uint8 (H, W) or (H, W, 3), sampled at most MAX_SIDE a side."""
    import torch

    from .coords import region_grid

    height, width = result.target.height, result.target.width
    scale = min(1.0, MAX_SIDE / max(height, width))
    out_h, out_w = max(1, round(height * scale)), max(1, round(width * scale))
    head = get_mode(result.config.data.mode)
    device = next(result.model.parameters()).device
    values = torch.empty(out_h * out_w, head.picture_channels)
    was_training = result.model.training
    result.model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, out_h * out_w, CHUNK):
                yx = region_grid(0.0, height, 0.0, width, out_h, out_w, start, start + CHUNK, device)
                values[start:start + len(yx)] = head.display(result.model(yx)).float().cpu()
    finally:
        result.model.train(was_training)
    picture = values.reshape(out_h, out_w, head.picture_channels).numpy()
    return to_uint8(picture[..., 0] if head.picture_channels == 1 else picture)


def result_html(result: TrainResult) -> str:
    """The result's headline, its prediction beside nothing else it needs, and its loss and headline curves."""
    mode = get_mode(result.config.data.mode)
    last = result.history[-1] if result.history else {}
    info = metricinfo.info(mode.headline)
    value = last.get(mode.headline)
    headline = f"{info.label} {info.format(value)}" if isinstance(value, (int, float)) else "no evaluation"
    state = "diverged" if result.diverged is not None else "interrupted" if result.interrupted else "trained"
    title = html.escape(f"{result.config.preset or 'custom'}: {state} to step {result.step:,}, {headline}")
    parts = [f"<div class='overfit-result'><p><b>{title}</b></p>", embedded_img(png_bytes(prediction(result)), "prediction")]
    curves = curves_png(result.history, mode.headline)
    if curves is not None:
        parts.append(embedded_img(curves, "curves"))
    return "\n".join(parts) + "</div>"


def curves_png(records: list[dict[str, Any]], headline: str) -> bytes | None:
    """The training loss (log scale) and the headline metric over the steps, side by side, as PNG bytes."""
    from .plots import new_figure

    loss = [(r["step"], r["train_loss"]) for r in records if isinstance(r.get("train_loss"), (int, float)) and r["train_loss"] > 0]
    metric = [(r["step"], r[headline]) for r in records if isinstance(r.get(headline), (int, float))]
    if not loss and not metric:
        return None
    info = metricinfo.info(headline)
    fig = new_figure(8.0, 2.6, 100, layout="constrained")
    for ax, points, title, log in ((fig.add_subplot(1, 2, 1), loss, "training loss", True),
                                   (fig.add_subplot(1, 2, 2), metric, info.label + (f" ({info.unit})" if info.unit else ""), False)):
        if points:
            steps, values = zip(*points)
            ax.plot(steps, [v * (1 if log else info.scale) for v in values], color="#4e79a7", linewidth=1.6)
            if log:
                ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step", fontsize=9)
        ax.grid(alpha=0.3)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=fig.dpi, facecolor="white")
    return out.getvalue()


def embedded_img(png: bytes, alt: str) -> str:
    """An <img> holding the PNG itself (a saved notebook shows it anywhere)."""
    return f"<img alt='{alt}' style='max-width:100%' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"
