"""Scaling with picture size: training step time, dense evaluation time and peak memory per target size.

Each size runs in a fresh subprocess (`python -m bench.scaling --worker W H ...`), so the
process's peak RSS belongs to that size alone (VmHWM; see `peak_rss_bytes` for why not
ru_maxrss). The worker renders the text
at W x H, builds a relu_1 `Trainer` and runs its real loop: the evaluation before the
first step and the one after the last are timed from the trainer's events, the steps in
between by log windows. RSS growth is measured from a baseline taken after importing
torch and overfit and warming up, and reported per pixel: dense evaluation runs in
chunks of `overfit.metrics.DENSE_CHUNK` coordinates, so the growth should be a few
bytes per pixel (the labels, the coordinate grid, the probability picture), never the
hidden activations of every pixel at once.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

# The original's 1000 x 300 and three larger canvases with the same aspect ratio.
SIZES = ((1000, 300), (1826, 548), (3651, 1095), (7303, 2191))
QUICK_SIZES = ((1000, 300), (1826, 548))


def peak_rss_bytes() -> int:
    """This process's peak resident set size.

    On Linux this is VmHWM from /proc/self/status, not getrusage's ru_maxrss: ru_maxrss
    survives fork and exec, so a worker started by the (large, after torch.compile)
    suite process would report the parent's peak. Elsewhere ru_maxrss (KiB on Linux
    and BSD, bytes on macOS).
    """
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def worker(width: int, height: int, steps: int, block: int, device: str) -> dict[str, Any]:
    import torch

    from overfit import Trainer
    from overfit.config import DataConfig
    from overfit.metrics import DENSE_CHUNK
    from overfit.presets import get_preset
    from overfit.targets import load_target
    from overfit.training import Event

    # Warm up torch's allocator and thread pool so the baseline holds the fixed costs.
    torch.mm(torch.randn(256, 256), torch.randn(256, 256))
    baseline = peak_rss_bytes()

    t = time.perf_counter()
    target = load_target(DataConfig(width=width, height=height))
    render_s = time.perf_counter() - t
    rss_target = peak_rss_bytes()

    cfg = get_preset("relu_1").with_overrides({
        "device": device, "schedule.steps": steps, "schedule.eval_every": 10**9, "schedule.log_every": block,
    })
    trainer = Trainer(cfg, target)
    stamps: list[tuple[str, int, float]] = []
    rss: dict[str, int] = {}

    def on_event(event: Event) -> None:
        stamps.append((event.kind, event.step, time.perf_counter()))
        if event.kind == "eval" and event.step == 0:
            rss["after_first_eval"] = peak_rss_bytes()

    t0 = time.perf_counter()
    trainer.run(on_event)
    # Evaluations: run() start -> eval event at step 0; last log event -> eval event at the end.
    first_eval = stamps[0][2] - t0
    logs = [s for s in stamps if s[0] == "log"]
    last_eval = [s for s in stamps if s[0] == "eval"][-1][2] - logs[-1][2]
    starts = [stamps[0][2]] + [s[2] for s in logs]
    blocks = [b - a for a, b in zip(starts, starts[1:])]
    timed = blocks[1:] or blocks
    pixels = width * height
    peak = peak_rss_bytes()
    return {
        "width": width, "height": height, "megapixels": round(pixels / 1e6, 3),
        "render_s": round(render_s, 3),
        "ms_per_step": round(statistics.median(timed) / block * 1e3, 4),
        "eval_ms": round(min(first_eval, last_eval) * 1e3, 1),
        "eval_ms_first": round(first_eval * 1e3, 1),
        "eval_ms_last": round(last_eval * 1e3, 1),
        "eval_megapixels_per_s": round(pixels / 1e6 / min(first_eval, last_eval), 2),
        "steps": trainer.step,
        "baseline_rss_mb": round(baseline / 2**20, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "rss_growth_mb": round((peak - baseline) / 2**20, 1),
        "rss_growth_target_mb": round((rss_target - baseline) / 2**20, 1),
        # Growth as a multiple of the picture's own size (uint8 labels: one byte per pixel),
        # i.e. bytes of peak memory per pixel.
        "rss_growth_x_picture": round((peak - baseline) / pixels, 1),
        "dense_chunk": DENSE_CHUNK,
    }


def run(rec: Any, device: str, sizes: tuple[tuple[int, int], ...], steps: int, block: int, timeout: float) -> None:
    from .common import note

    for width, height in sizes:
        note(f"scaling: {width} x {height} in a fresh process")
        cmd = [sys.executable, "-m", "bench.scaling", "--worker", str(width), str(height),
               "--steps", str(steps), "--block", str(block), "--device", device]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            rec.emit("scaling", width=width, height=height, measured=False, reason=f"timed out after {timeout:.0f} s")
            continue
        lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            rec.emit("scaling", width=width, height=height, measured=False, reason=f"exit {proc.returncode}: {tail}")
            continue
        rec.emit("scaling", measured=True, **json.loads(lines[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description="one scaling measurement (used by the suite)")
    p.add_argument("--worker", nargs=2, type=int, metavar=("WIDTH", "HEIGHT"), required=True)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    print(json.dumps(worker(*args.worker, args.steps, args.block, args.device)))


if __name__ == "__main__":
    main()
