"""Sweep overhead: N trials through `overfit sweep` (Ray Tune, local) against the same N runs in a plain loop,
and against packing them into one process (`overfit train PRESET --seeds 0-(N-1)`, stacked where the shape allows).

All three write ordinary run folders. The loop trains them one after another in this process
through `Session` (its imports are not counted); the sweep runs `overfit sweep PRESET --seeds N`
in a fresh process (Ray starts inside it, one trial per core, one torch thread each, workers
reused between trials); packed runs `overfit train PRESET --seeds 0-(N-1)` in a fresh process
with every core. The variants are interleaved and repeated. Reported per variant: median wall
seconds and range; for the sweep, the ratio to the loop, the wall overhead per trial
(sweep - loop) / N, and the fixed cost (Ray start, report) read from its trials' own clocks.
A measurement, not a test.

    python -m bench.sweep_overhead [--trials N] [--repeats R] [--preset fast] [--steps S]   # JSON lines
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def plain_loop(preset: str, overrides: dict[str, str], trials: int, runs_dir: Path) -> float:
    from overfit.presets import get_preset
    from overfit.session import Session

    started = time.perf_counter()
    for seed in range(trials):
        cfg = get_preset(preset).with_overrides({**overrides, "seed": str(seed)})
        with Session.start(cfg, runs_dir, f"loop-{seed}") as session:
            session.run()
    return time.perf_counter() - started


def _cli(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "overfit.cli", *args], cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def _flags(overrides: dict[str, str]) -> list[str]:
    return [part for key, value in overrides.items() for part in (f"--{key}", value)]


def sweep(preset: str, overrides: dict[str, str], trials: int, cwd: Path, name: str) -> tuple[float, list[float]]:
    """Wall seconds of the whole command, and each trial's own seconds (Ray's time_total_s)."""
    wall = _cli(["sweep", preset, "--seeds", f"0-{trials - 1}", "--name", name, *_flags(overrides)], cwd)
    with open(cwd / "sweeps" / name / "results.csv") as f:
        trial_s = [float(row["wall_s"]) for row in csv.DictReader(f)]
    return wall, trial_s


def packed(preset: str, overrides: dict[str, str], trials: int, cwd: Path, name: str) -> float:
    return _cli(["train", preset, "--seeds", f"0-{trials - 1}", "--name", name, "--quiet", *_flags(overrides)], cwd)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--preset", default="fast")
    parser.add_argument("--steps", type=int, default=None, help="override the preset's steps")
    parser.add_argument("--eval-every", type=int, default=None)
    args = parser.parse_args()
    import torch

    from bench.common import cpu_model

    overrides = {}
    if args.steps:
        overrides["schedule.steps"] = str(args.steps)
    if args.eval_every:
        overrides["schedule.eval_every"] = str(args.eval_every)
    cores = os.cpu_count() or 1
    loop_s: list[float] = []
    sweep_s: list[float] = []
    packed_s: list[float] = []
    fixed_s: list[float] = []
    trial_s: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.repeats):  # interleaved, so a machine that changes speed spreads over all three
            loop_s.append(plain_loop(args.preset, overrides, args.trials, Path(tmp) / "runs" / str(r)))
            wall, per_trial = sweep(args.preset, overrides, args.trials, Path(tmp), f"bench-{r}")
            sweep_s.append(wall)
            trial_s.extend(per_trial)
            # Trials run `cores` at a time: what the wall time holds beyond their own clocks is the engine's fixed cost.
            fixed_s.append(wall - sum(per_trial) / min(cores, args.trials))
            packed_s.append(packed(args.preset, overrides, args.trials, Path(tmp), f"packed-{r}"))
    loop, sw, pk = (statistics.median(v) for v in (loop_s, sweep_s, packed_s))
    print(json.dumps({
        "bench": "sweep_overhead", "device": cpu_model(), "threads": torch.get_num_threads(), "cores": cores,
        "preset": args.preset, "overrides": overrides, "trials": args.trials, "repeats": args.repeats,
        "loop_s": round(loop, 2), "loop_range": [round(min(loop_s), 2), round(max(loop_s), 2)],
        "sweep_s": round(sw, 2), "sweep_range": [round(min(sweep_s), 2), round(max(sweep_s), 2)],
        "packed_s": round(pk, 2), "packed_range": [round(min(packed_s), 2), round(max(packed_s), 2)],
        "loop_trial_s": round(loop / args.trials, 2), "sweep_trial_s_median": round(statistics.median(trial_s), 2),
        "sweep_vs_loop": round(sw / loop, 3), "packed_vs_loop": round(pk / loop, 3),
        "overhead_per_trial_s": round((sw - loop) / args.trials, 2),
        "sweep_fixed_s": round(statistics.median(fixed_s), 2),
    }))


if __name__ == "__main__":
    main()
