"""Training throughput of the original recipe (relu_1, batch 1024, Adam 1e-4), side by side.

Four implementations of the same step on the same machine:
- overfit's `Trainer`, eager and with `compile=True`: the real loop (`Trainer.run`),
  timed from its own "log" events, one every `block` steps;
- bench/plain_port.py: the original loop in plain eager PyTorch;
- bench/megengine_original.py: the original code in MegEngine, in its own venv.
Each reports the median block of `block` steps after warm-up, as ms/step and samples/s.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from overfit import Trainer
from overfit.config import RunConfig
from overfit.presets import get_preset
from overfit.training import Event

from . import plain_port
from .common import BENCH_DIR, TRAIN_FLOPS_PER_SAMPLE, block_stats, note

MEGENGINE_PYTHON = BENCH_DIR / ".megengine-venv" / "bin" / "python"
WARMUP_BLOCKS = 2


def recipe(device: str, compile: bool, steps: int, block: int) -> RunConfig:
    """relu_1 on the built-in OVERFIT, evaluating only at the start and the end, logging every block."""
    return get_preset("relu_1").with_overrides({
        "device": device, "compile": compile,
        "schedule.steps": steps, "schedule.eval_every": 10**9, "schedule.log_every": block,
    })


def time_trainer(cfg: RunConfig) -> tuple[list[float], Trainer]:
    """Run `Trainer(cfg)` and return the seconds of each log window (block of log_every steps).

    The trainer evaluates once before its first step and once after its last; the
    windows lie between those, so evaluation is not in them. A "log" event comes after
    the trainer has read the block's losses back, so device work is finished.
    """
    trainer = Trainer(cfg)
    stamps: list[float] = []

    def on_event(event: Event) -> None:
        if event.kind == "log" or (event.kind == "eval" and event.step == 0):
            stamps.append(time.perf_counter())

    trainer.run(on_event)
    return [b - a for a, b in zip(stamps, stamps[1:])], trainer


def overfit_row(device: str, compile: bool, steps: int, block: int) -> dict[str, Any]:
    cfg = recipe(device, compile, steps, block)
    t = time.perf_counter()
    blocks, trainer = time_trainer(cfg)
    total = time.perf_counter() - t
    stats = block_stats(blocks, block, WARMUP_BLOCKS, cfg.optim.batch_size)
    row: dict[str, Any] = {"impl": "overfit_compiled" if compile else "overfit_eager", **stats}
    # The first block pays for torch.compile (and the first-call allocations in eager).
    row["first_block_s"] = round(blocks[0], 3)
    row["warmup_s"] = round(blocks[0] - stats["ms_per_step"] * block / 1e3, 3)
    row["steps"] = trainer.step
    row["wall_s"] = round(total, 2)
    row["achieved_gflops"] = round(TRAIN_FLOPS_PER_SAMPLE * stats["samples_per_s"] / 1e9, 2)
    return row


def plain_row(labels: np.ndarray, device: str, steps: int, block: int) -> dict[str, Any]:
    blocks = plain_port.train(labels, steps, block, device)
    stats = block_stats(blocks, block, WARMUP_BLOCKS, 1024)
    return {"impl": "plain_port", **stats,
            "achieved_gflops": round(TRAIN_FLOPS_PER_SAMPLE * stats["samples_per_s"] / 1e9, 2)}


def megengine_row(labels: np.ndarray, steps: int, block: int, timeout: float) -> dict[str, Any]:
    """The MegEngine baseline in its own venv, or a row saying why it was not measured."""
    if not MEGENGINE_PYTHON.exists():
        reason = f"{MEGENGINE_PYTHON.relative_to(BENCH_DIR.parent)} is missing; create it with `bash bench/make_megengine_env.sh` (needs python3.10)"
        note(f"MegEngine skipped: {reason}")
        return {"impl": "megengine_original", "measured": False, "reason": reason}
    with tempfile.TemporaryDirectory() as tmp:
        gt = Path(tmp) / "gt.npy"
        np.save(gt, labels)
        cmd = [str(MEGENGINE_PYTHON), str(BENCH_DIR / "megengine_original.py"),
               "--labels", str(gt), "--steps", str(steps), "--block", str(block)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            reason = f"timed out after {timeout:.0f} s"
            note(f"MegEngine skipped: {reason}")
            return {"impl": "megengine_original", "measured": False, "reason": reason}
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        reason = f"exit {proc.returncode}: {tail}"
        note(f"MegEngine skipped: {reason}")
        return {"impl": "megengine_original", "measured": False, "reason": reason}
    out = json.loads(lines[-1])
    stats = block_stats(out["block_seconds"], block, WARMUP_BLOCKS, 1024)
    return {"impl": "megengine_original", "measured": True, **stats,
            "achieved_gflops": round(TRAIN_FLOPS_PER_SAMPLE * stats["samples_per_s"] / 1e9, 2),
            "megengine": out["megengine"], "megengine_device": out["megengine_device"]}


def run(rec: Any, device: str, steps: int, block: int, megengine: bool = True) -> None:
    from overfit.config import DataConfig
    from overfit.targets import load_target

    labels = load_target(DataConfig()).labels
    note(f"throughput: overfit eager, {steps} steps")
    rec.emit("train_throughput", **overfit_row(device, False, steps, block))
    note(f"throughput: overfit compiled, {steps} steps (+ compile)")
    rec.emit("train_throughput", **overfit_row(device, True, steps, block))
    note(f"throughput: plain PyTorch port, {steps} steps")
    rec.emit("train_throughput", **plain_row(labels, device, steps, block))
    if megengine:
        note(f"throughput: MegEngine original, {steps} steps")
        rec.emit("train_throughput", **megengine_row(labels, steps, block, timeout=max(120.0, steps * 0.05)))


if __name__ == "__main__":
    sys.exit("run the suite with `python -m bench --only throughput`")
