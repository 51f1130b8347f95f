"""Time to accuracy: for each preset, training wall time and steps until the dense accuracy reaches 90/95/99 %.

Each preset trains on the built-in OVERFIT with overfit's `Trainer`, evaluating every
pixel every `eval_every` steps, until 99 % or the step cap. Wall time is the trainer's
own `train_seconds`: training only, evaluations excluded (with compile=True it includes
the one-off compile, paid in the first window).
"""

from __future__ import annotations

import time
from typing import Any

from overfit import Trainer
from overfit.presets import get_preset
from overfit.training import Event, TrainingDiverged

from .common import note

PRESETS = ("relu_raw", "relu_1", "tanh_1", "cos_1", "cos_3", "bn_relu")
THRESHOLDS = (0.90, 0.95, 0.99)


def time_to_accuracy(preset: str, device: str, compile: bool, cap: int, eval_every: int) -> dict[str, Any]:
    cfg = get_preset(preset).with_overrides({
        "device": device, "compile": compile, "schedule.steps": cap, "schedule.eval_every": eval_every,
        "schedule.log_every": min(100, eval_every),
    })
    trainer = Trainer(cfg)
    reached: dict[float, tuple[int, float]] = {}
    best = 0.0

    def on_event(event: Event) -> None:
        nonlocal best
        if event.kind != "eval":
            return
        acc = event.metrics["dense_acc"]
        best = max(best, acc)
        for t in THRESHOLDS:
            if acc >= t and t not in reached:
                reached[t] = (event.step, event.metrics["train_seconds"])
        if len(reached) == len(THRESHOLDS):
            event.trainer.request_stop()

    t = time.perf_counter()
    diverged = None
    try:
        trainer.run(on_event)
    except TrainingDiverged as e:
        diverged = e.step
    row: dict[str, Any] = {"preset": preset, "compile": compile, "cap": cap, "eval_every": eval_every}
    for th in THRESHOLDS:
        key = f"{round(th * 100)}"
        step, secs = reached.get(th, (None, None))
        row[f"steps_to_{key}"] = step
        row[f"seconds_to_{key}"] = round(secs, 2) if secs is not None else None
        row[f"reached_{key}"] = step is not None
    row["best_dense_acc"] = round(best, 5)
    row["steps_run"] = trainer.step
    row["train_seconds"] = round(trainer.train_seconds, 2)
    row["wall_s"] = round(time.perf_counter() - t, 2)
    row["diverged_at"] = diverged
    return row


def run(rec: Any, device: str, compile: bool, cap: int, eval_every: int, presets: tuple[str, ...] = PRESETS) -> None:
    for preset in presets:
        note(f"time to accuracy: {preset} (cap {cap} steps, compile={compile})")
        rec.emit("time_to_accuracy", **time_to_accuracy(preset, device, compile, cap, eval_every))
