"""The article's whole run, measured: relu_1 for 100000 steps, evaluating every 2000 (`--full` only).

The default suite estimates this from the measured ms/step and evaluation time
(100000 x step + 51 x evaluation); this runs it for real, through `Trainer.run`.
"""

from __future__ import annotations

import time
from typing import Any

from overfit import Trainer
from overfit.presets import get_preset


def run(rec: Any, device: str, compile: bool, steps: int = 100_000, eval_every: int = 2000) -> None:
    cfg = get_preset("relu_1").with_overrides({
        "device": device, "compile": compile, "schedule.steps": steps, "schedule.eval_every": eval_every})
    trainer = Trainer(cfg)
    t = time.perf_counter()
    result = trainer.run()
    wall = time.perf_counter() - t
    rec.emit("full_run", compile=compile, steps=result.step, eval_every=eval_every, evaluations=len(result.history),
             wall_s=round(wall, 2), train_seconds=round(trainer.train_seconds, 2),
             final_dense_acc=round(result.history[-1]["dense_acc"], 5))
