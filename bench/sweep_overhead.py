"""Sweep overhead: 16 trials of `fast` through `overfit sweep` (Ray Tune, local) against the same 16 runs in a plain loop.

Both write ordinary run folders. The loop trains them one after another in this process
through `Session`; the sweep runs `overfit sweep fast --seeds 16` in a fresh process (Ray
starts inside it, one trial per core). Reported: wall seconds of each, and the sweep's
overhead per trial, (sweep seconds x cores used - loop seconds) / trials. A measurement,
not a test.

    python -m bench.sweep_overhead [--trials N]    # prints one JSON line
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def plain_loop(trials: int, runs_dir: Path) -> float:
    from overfit.presets import get_preset
    from overfit.session import Session

    started = time.perf_counter()
    for seed in range(trials):
        cfg = get_preset("fast").with_overrides({"seed": str(seed)})
        with Session.start(cfg, runs_dir, f"loop-{seed}") as session:
            session.run()
    return time.perf_counter() - started


def sweep(trials: int, cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "overfit.cli", "sweep", "fast", "--seeds", str(trials), "--name", "bench"],
                   cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    args = parser.parse_args()
    import torch

    from bench.common import cpu_model

    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        loop_s = plain_loop(args.trials, Path(tmp) / "runs")
        sweep_s = sweep(args.trials, Path(tmp))
    used = min(cores, args.trials)
    print(json.dumps({
        "bench": "sweep_overhead", "device": cpu_model(), "threads": torch.get_num_threads(), "cores": cores,
        "trials": args.trials, "loop_s": round(loop_s, 2), "sweep_s": round(sweep_s, 2),
        "overhead_per_trial_s": round((sweep_s * used - loop_s) / args.trials, 2),
    }))


if __name__ == "__main__":
    main()
