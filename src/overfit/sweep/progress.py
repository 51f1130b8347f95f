"""The progress line of a running sweep: trials done, running, pending, stopped early, failed, and the best so far."""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback

from .spec import SweepSpec


class SweepProgress(Callback):
    """A Tune callback that prints one line to stderr whenever the counts change (at most every `every_s` seconds otherwise)."""

    def __init__(self, spec: SweepSpec, every_s: float = 10.0) -> None:
        self.metric, self.mode, self.total, self.every_s = spec.metric, spec.mode, spec.trial_count(), every_s
        self.last_line, self.last_time = "", 0.0
        self.best: tuple[float, str] | None = None
        self.stopped: set[str] = set()

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        value = result.get(self.metric)
        if isinstance(value, (int, float)):
            better = self.best is None or (value > self.best[0] if self.mode == "max" else value < self.best[0])
            if better:
                self.best = (float(value), trial.trial_id)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        counts = {"done": 0, "running": 0, "pending": 0, "failed": 0}
        for t in trials:
            status = t.status
            if status == "TERMINATED":
                counts["done"] += 1
            elif status == "RUNNING":
                counts["running"] += 1
            elif status == "ERROR":
                counts["failed"] += 1
            else:
                counts["pending"] += 1
        best = f"; best {self.metric} {self.best[0]:.4g} ({self.best[1]})" if self.best else ""
        line = (f"sweep: {counts['done']} done, {counts['running']} running, {counts['pending']} pending, "
                f"{counts['failed']} failed of {max(self.total, len(trials))}{best}")
        now = time.monotonic()
        if line != self.last_line and (now - self.last_time > self.every_s or line.split(";")[0] != self.last_line.split(";")[0]):
            print(line, file=sys.stderr, flush=True)
            self.last_line, self.last_time = line, now
