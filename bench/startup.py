"""Start-up section: seconds from the shell prompt to the command's exit, for the commands people type first.

- `overfit --help` and `overfit presets`: the group and the registries, no torch.
- `overfit train --help`: the train command and its epilog (every config field).
- `overfit train fast --runs-dir TMP`: a whole run, from the prompt to the last file
  written (config, target, samples, frames, checkpoint, final.png, MP4, GIF).

Each is run as a fresh subprocess through the installed `overfit` script, `repeats`
times; the median, min and max wall seconds are reported. Thread settings are inherited.

    python -m bench.startup [--repeats N]    # prints the JSON lines only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CASES = (
    ("overfit --help", ["--help"]),
    ("overfit presets", ["presets"]),
    ("overfit train --help", ["train", "--help"]),
    ("overfit train fast", ["train", "fast", "--runs-dir", "{runs}"]),
)


def overfit_command() -> list[str]:
    """The `overfit` console script beside this interpreter, or `python -m overfit.cli` without one."""
    script = Path(sys.executable).with_name("overfit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "overfit.cli"]


def time_case(args: list[str], repeats: int) -> list[float]:
    """Wall seconds of `repeats` fresh runs of `overfit ARGS` (each train run in a new, empty runs folder)."""
    seconds = []
    for _ in range(repeats):
        runs = tempfile.mkdtemp(prefix="overfit-startup-")
        try:
            cmd = overfit_command() + [a.replace("{runs}", runs) for a in args]
            t = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds.append(time.perf_counter() - t)
        finally:
            shutil.rmtree(runs, ignore_errors=True)
    return seconds


def measure(repeats: int) -> list[dict[str, Any]]:
    """One record per case: median, min and max wall seconds over `repeats` runs."""
    records = []
    for name, args in CASES:
        seconds = time_case(args, repeats)
        records.append({"command": name, "median_s": round(statistics.median(seconds), 3),
                        "min_s": round(min(seconds), 3), "max_s": round(max(seconds), 3), "runs": repeats})
    return records


def run(rec: Any, repeats: int) -> None:
    """The suite's section: one `startup` record per command."""
    for record in measure(repeats):
        rec.emit("startup", **record)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5, help="fresh runs per command (default 5)")
    args = p.parse_args()
    from .common import cpu_model

    machine = {"device": cpu_model(), "cores": os.cpu_count(),
               "thread_env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")}}
    for record in measure(args.repeats):
        print(json.dumps({"bench": "startup", **machine, **record}), flush=True)


if __name__ == "__main__":
    main()
