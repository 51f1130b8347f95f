"""Dense evaluation and rendering throughput: predicting every pixel of the 1000 x 300 picture.

Three ways, each the median of several runs with a relu_1 model:
- `overfit.metrics.dense_metrics`: chunked forward + accuracy, IoU, loss and the
  probability picture copied to the host (what every evaluation does);
- `Trainer.evaluate`: the above plus the 4096-point batch metrics (what a run pays
  per evaluation; the full-run estimate uses it);
- a plain `torch.inference_mode` forward over `overfit.coords.pixel_grid` in one piece
  (rendering without metrics; the grid is built once, outside the timer).
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from overfit import Trainer
from overfit.coords import pixel_grid
from overfit.metrics import dense_metrics
from overfit.presets import get_preset

from .common import time_call


def run(rec: Any, device: str, repeats: int) -> None:
    cfg = get_preset("relu_1").with_overrides({"device": device})
    trainer = Trainer(cfg)
    model, labels, dev = trainer.model, trainer.target_tensor, trainer.device
    height, width = labels.shape
    megapixels = height * width / 1e6
    model.eval()

    grid = pixel_grid(height, width, dev)

    def forward() -> None:
        with torch.inference_mode():
            model(grid).argmax(dim=1)

    ways = {
        "dense_metrics": lambda: dense_metrics(model, labels, trainer.loss_fn),
        "trainer_evaluate": trainer.evaluate,
        "plain_forward": forward,
    }
    for name, fn in ways.items():
        times = time_call(fn, dev, repeats, warmup=2)
        med = statistics.median(times)
        rec.emit("dense_eval", method=name, width=width, height=height, repeats=repeats,
                 ms=round(med * 1e3, 2), ms_min=round(min(times) * 1e3, 2),
                 megapixels_per_s=round(megapixels / med, 2))
    model.train()
