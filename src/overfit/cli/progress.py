"""The progress bar of a training run: a tqdm bar on stderr fed by the trainer's events.

It shows the step, the training loss and the run's headline metric: which metric is the
mode's (`modes.Mode.headline`), its label and format the metric registry's (`metricinfo`),
so it knows no mode or metric by name; with held-out pixels, the headline on the training
pixels and on the held-out ones beside it.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from .. import metricinfo
from ..modes import get_mode


class Progress:
    """A trainer callback that draws a progress bar; `close()` it when the run stops."""

    def __init__(self, trainer: Any, quiet: bool, desc: str | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.cfg.schedule.steps, initial=trainer.step, unit="step", disable=quiet,
                        dynamic_ncols=True, file=sys.stderr, smoothing=0.1, desc=desc, leave=desc is None)
        headline = get_mode(trainer.cfg.data.mode).headline
        # The record's keys of the headline over every pixel, the training pixels and the held-out pixels.
        self.keys = (headline, metricinfo.scoped(headline, metricinfo.FIT), metricinfo.scoped(headline, metricinfo.TEST))
        self.label = metricinfo.info(headline).label
        last = trainer.history[-1] if trainer.history else {}
        self.score, self.fit, self.test = (last.get(key, math.nan) for key in self.keys)
        self.loss = math.nan

    def __call__(self, event: Any) -> None:
        if event.kind == "log":
            self.loss = event.metrics["loss"]
            self.bar.update(event.step - self.bar.n)
        elif event.kind == "eval":
            self.score = event.metrics[self.keys[0]]
            self.fit, self.test = (event.metrics.get(key, math.nan) for key in self.keys[1:])
        loss = f"{self.loss:.4g}" if math.isfinite(self.loss) else "-"
        text = f"loss {loss}  {self.label} {self._shown(self.score)}"
        if math.isfinite(self.test):  # a run with held-out pixels: fit versus generalise
            text += f"  train px {self._shown(self.fit)}  held out {self._shown(self.test)}"
        self.bar.set_postfix_str(text, refresh=False)

    def _shown(self, value: float) -> str:
        return metricinfo.format_value(self.keys[0], value)

    def close(self) -> None:
        self.bar.close()
