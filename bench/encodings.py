"""Encodings section: how fast the modern presets fit, in training seconds.

- `fast` on the built-in OVERFIT: training seconds until the dense pixel accuracy first
  reaches 99.9 % (import, target rendering and model set-up timed separately).
- `grid` on scikit-image's 512 x 512 `camera` photograph (grayscale): training seconds to
  40 dB and to 50 dB PSNR.
- PSNR at equal training time on `camera` for relu + input scaling (relu_1's network),
  fourier, siren and grid, with parameter count and bytes of parameters per pixel.

Training seconds are the trainer's own clock (`train_seconds`): steps only, evaluations
excluded, so evaluating often to find the crossing does not slow the run being timed.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from typing import Any

import numpy as np

from .common import Recorder, note

FAST_TARGET_ACC = 0.999
PSNR_TARGETS = (40.0, 50.0)
# What the issue asks: fast < 1 s to 99.9 %; grid < 5 s to 40 dB and < 30 s to 50 dB.
FAST_LIMIT_S = 1.0
PSNR_LIMITS_S = {40.0: 5.0, 50.0: 30.0}
EQUAL_TIME_PRESETS = ("relu_1", "fourier", "siren", "grid")


def camera() -> np.ndarray | None:
    """scikit-image's cameraman, (512, 512) uint8, shipped inside the wheel (no download)."""
    try:
        from skimage import data
    except ImportError:
        return None
    return data.camera()


def _params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def _train_until(cfg: Any, target: Any, stop: Any, budget_s: float) -> tuple[Any, list[dict[str, Any]], float]:
    """Train until `stop(record)` is true at an evaluation or `budget_s` training seconds pass; (trainer, history, setup s)."""
    from overfit.training import Trainer

    t = time.perf_counter()
    trainer = Trainer(cfg, target)
    setup = time.perf_counter() - t

    def on_event(event: Any) -> None:
        if event.kind == "eval" and stop(event.metrics):
            trainer.request_stop()
        elif event.kind == "log" and trainer.train_seconds >= budget_s:
            trainer.request_stop()

    trainer.run(on_event)
    # A stop on the time budget lands between evaluations: measure where it ended.
    if trainer.history[-1]["step"] != trainer.step:
        record, _ = trainer.evaluate()
        trainer.history.append(record)
    return trainer, trainer.history, setup


def _first(history: list[dict[str, Any]], key: str, level: float) -> dict[str, Any] | None:
    return next((r for r in history if r.get(key, -math.inf) >= level), None)


def import_seconds() -> float:
    """Seconds to import overfit's trainer in a fresh interpreter (this process has it imported already)."""
    code = "import time; t = time.perf_counter(); import overfit.training, overfit.presets; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip())


def run(rec: Recorder, device: str, quick: bool = False) -> None:
    from overfit.presets import get_preset
    from overfit.targets import load_target, make_target

    import_s = import_seconds()

    # -- fast on OVERFIT -------------------------------------------------------------------
    cfg = get_preset("fast").with_overrides({"device": device, "schedule.eval_every": 5, "schedule.log_every": 5})
    t = time.perf_counter()
    target = load_target(cfg.data)
    target_s = time.perf_counter() - t
    budget = 5.0 if quick else 20.0
    trainer, history, setup = _train_until(cfg, target, lambda r: r["dense_acc"] >= FAST_TARGET_ACC, budget)
    hit = _first(history, "dense_acc", FAST_TARGET_ACC)
    rec.emit("fast_overfit", preset="fast", target_acc=FAST_TARGET_ACC,
             reached=hit is not None, train_s=None if hit is None else hit["train_seconds"],
             steps=None if hit is None else hit["step"], final_acc=history[-1]["dense_acc"],
             import_s=round(import_s, 3), target_s=round(target_s, 3), setup_s=round(setup, 3),
             params=_params(trainer.model), batch=cfg.optim.batch_size)

    # -- camera: grid to 40 and 50 dB ---------------------------------------------------------
    picture = camera()
    if picture is None:
        note("encodings: scikit-image is not installed; skipping the camera figures (pip install scikit-image)")
        return
    photo = make_target(picture, "skimage.data.camera()", "gray")
    pixels = photo.num_pixels
    cfg = get_preset("grid").with_overrides({"device": device, "data.mode": "gray", "schedule.eval_every": 25, "schedule.log_every": 5})
    if quick:
        cfg = cfg.with_overrides({"schedule.steps": 200})
    trainer, history, setup = _train_until(cfg, photo, lambda r: r["dense_psnr"] >= PSNR_TARGETS[-1], 10.0 if quick else 60.0)
    for level in PSNR_TARGETS:
        hit = _first(history, "dense_psnr", level)
        rec.emit("grid_camera", preset="grid", target_db=level, reached=hit is not None,
                 train_s=None if hit is None else hit["train_seconds"], steps=None if hit is None else hit["step"],
                 final_db=round(history[-1]["dense_psnr"], 2), final_s=history[-1]["train_seconds"], setup_s=round(setup, 3),
                 params=_params(trainer.model), bytes_per_pixel=round(4 * _params(trainer.model) / pixels, 2),
                 batch=cfg.optim.batch_size, limit_s=PSNR_LIMITS_S[level])

    # -- PSNR at equal training time -------------------------------------------------------------
    budget = 2.0 if quick else 10.0
    for name in EQUAL_TIME_PRESETS:
        base = get_preset(name).with_overrides({"device": device, "data.mode": "gray", "schedule.log_every": 5})
        # The presets' learning-rate decays need an end: a short probe measures the step time, and the
        # schedule is set to the steps that fill the budget (the budget still stops the run).
        probe, _, _ = _train_until(base.with_overrides({"schedule.steps": 30, "schedule.eval_every": 30}), photo, lambda r: False, budget)
        steps = max(30, int(budget / (probe.train_seconds / probe.step)))
        cfg = base.with_overrides({"schedule.steps": steps, "schedule.eval_every": steps})
        trainer, history, _ = _train_until(cfg, photo, lambda r: False, budget * 1.1)
        last = history[-1]
        rec.emit("equal_time_camera", preset=name, budget_s=budget, train_s=last["train_seconds"], steps=last["step"],
                 psnr=round(last["dense_psnr"], 2), ssim=round(last["dense_ssim"], 4), params=_params(trainer.model),
                 bytes_per_pixel=round(4 * _params(trainer.model) / pixels, 2), batch=cfg.optim.batch_size)
