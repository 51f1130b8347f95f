"""Probes: what an evaluation measures beyond the metrics, handed to the trainer like Lightning callbacks.

A `Trainer` evaluates (batch metrics, dense metrics, the prediction) and knows nothing
else; each probe in `Trainer(cfg, target, probes=[...])` hooks into that evaluation and
adds its own keys to the record, which goes on to the history, the events and
metrics.jsonl. The ones every recorded run takes (`diagnostics.default_probes()`:
layer statistics as "layers", band errors as "bands") live beside what they measure.

The hooks, in the order a trainer calls them (a probe overrides the ones it needs):

    before_update(trainer)                   the step whose update the next evaluation reports,
                                             just before the optimizer changes the weights
    around_batch(trainer, yx) -> context     open while the evaluation batch goes forward
    after_dense(trainer, record, prediction) after the dense pass: add keys to `record`

A probe belongs to one trainer: it may keep state between its hooks. This module
imports nothing (no torch): it is the interface only.
"""

from __future__ import annotations

import contextlib
from typing import Any, ContextManager


class Probe:
    """Something an evaluation also measures. Every hook does nothing unless overridden.

    `trainer` is the `training.Trainer` being evaluated (its model, mode, target, step).
    """

    def before_update(self, trainer: Any) -> None:
        """Just before the optimizer's update that leads to an evaluation (that evaluation is at `trainer.step + 1`)."""

    def around_batch(self, trainer: Any, yx: Any) -> ContextManager[Any]:
        """A context open while the evaluation batch (coordinates yx, (N, 2)) goes through the model in eval mode."""
        return contextlib.nullcontext()

    def after_dense(self, trainer: Any, record: dict[str, Any], prediction: Any) -> None:
        """After the dense pass: add this probe's keys (JSON-ready values) to `record`.

        prediction: the dense prediction as `training.Event.prediction` has it ((H, W) or (H, W, 3) in [0, 1]).
        """
