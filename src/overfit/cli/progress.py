"""The progress bar of a training run: a tqdm bar on stderr fed by the trainer's events.

It shows the step, the training loss and the run's headline metric, named and formatted
by the run's mode (`modes.Mode.headline`), so it knows no mode by name.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from ..modes import get_mode


class Progress:
    """A trainer callback that draws a progress bar; `close()` it when the run stops."""

    def __init__(self, trainer: Any, quiet: bool, desc: str | None = None) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=trainer.cfg.schedule.steps, initial=trainer.step, unit="step", disable=quiet,
                        dynamic_ncols=True, file=sys.stderr, smoothing=0.1, desc=desc, leave=desc is None)
        self.mode = get_mode(trainer.cfg.data.mode)
        self.score = trainer.history[-1][self.mode.headline] if trainer.history else math.nan
        self.loss = math.nan

    def __call__(self, event: Any) -> None:
        if event.kind == "log":
            self.loss = event.metrics["loss"]
            self.bar.update(event.step - self.bar.n)
        elif event.kind == "eval":
            self.score = event.metrics[self.mode.headline]
        loss = f"{self.loss:.4g}" if math.isfinite(self.loss) else "-"
        score = self.mode.format_headline(self.score) if math.isfinite(self.score) else "-"
        self.bar.set_postfix_str(f"loss {loss}  {self.mode.headline_label} {score}", refresh=False)

    def close(self) -> None:
        self.bar.close()
