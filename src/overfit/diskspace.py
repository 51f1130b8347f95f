"""The disk a run writes, bounded before it starts: a runs folder that cannot hold it is refused in one line.

A run writes a frame at every evaluation, a metrics line, a checkpoint, weight snapshots of
small models, and its pictures and videos at the end. The memory budget (`budget`) bounds what
a run holds; this bounds what it leaves: 100,000 evaluations of a 4096 x 4096 picture would be
1.7 TB of frames. The bound is pessimistic (frames counted as uncompressed pixels; PNG stores
a prediction in far less), so a run refused here could not have been sure to fit.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Sequence

from .budget import estimate, format_bytes
from .config import RunConfig
from .errors import DiskBudgetError
from .modes import get_mode
from .recorder import SNAPSHOT_PARAMS, WEIGHT_SNAPSHOTS

FILE_OVERHEAD = 1024  # bytes of PNG headers and file-system slack per frame
METRICS_LINE = 2048  # bytes of a metrics line, plus LAYER_LINE per hidden layer (its statistics)
LAYER_LINE = 256
PICTURES = 6  # target, final plot, batch plot, progress video and GIF: at most this many full-size RGB pictures' worth
DISK_SHARE = 0.9  # of the free space a run (or a batch starting together) may be sure to take


def evaluations_after(cfg: RunConfig, step: int = -1) -> int:
    """The evaluations of `cfg`'s schedule still to come after `step` (-1: all of them; a resumed run: its checkpoint's)."""
    if step < 0:
        return cfg.schedule.evaluation_count()
    return sum(1 for s in cfg.schedule.evaluation_steps() if s > step)


def disk_estimate(cfg: RunConfig, target_shape: tuple[int, int] | None = None, from_step: int = -1) -> int:
    """Bytes a run of `cfg` can write at most over its schedule, on a picture of `target_shape`: the whole schedule, or a
    resumed run's rest of it after its checkpoint at `from_step` (what it wrote before is on the disk already)."""
    est = estimate(cfg, target_shape)
    height, width = target_shape or (cfg.data.height, cfg.data.width)
    pixels, channels = height * width, get_mode(cfg.data.mode).picture_channels
    evaluations = evaluations_after(cfg, from_step)
    frames = evaluations * (pixels * channels + FILE_OVERHEAD)
    metrics = evaluations * (METRICS_LINE + LAYER_LINE * len(cfg.model.hidden))
    snapshots = min(evaluations, WEIGHT_SNAPSHOTS + 1) * est.parameters * 2 if est.parameters <= SNAPSHOT_PARAMS else 0
    # The checkpoint and the pictures are replaced atomically: a new copy is written beside the old before it goes.
    checkpoint = next(p.bytes for p in est.parts if p.name == "checkpoint")
    return frames + metrics + snapshots + checkpoint + PICTURES * pixels * 3


def _free(folder: Path) -> int:
    """Free bytes on the file system that holds `folder` (or its nearest existing parent)."""
    probe = folder.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_disk(configs: Sequence[RunConfig], shapes: Sequence[tuple[int, int] | None], runs_dir: str | os.PathLike,
               from_steps: Sequence[int] | None = None) -> None:
    """Refuse runs that together may write more than DISK_SHARE of the free space where `runs_dir` is.

    `from_steps`: for resumed runs, the step of each one's checkpoint (-1: none yet); only the rest of
    each schedule is counted (a run resumed with schedule.steps raised has that much more to write).
    """
    steps = list(from_steps) if from_steps is not None else [-1] * len(configs)
    needed = [disk_estimate(cfg, shape, step) for cfg, shape, step in zip(configs, shapes, steps)]
    free = _free(Path(runs_dir))
    if sum(needed) <= DISK_SHARE * free:
        return
    big = max(range(len(configs)), key=needed.__getitem__)
    cfg, shape, step = configs[big], shapes[big], steps[big]
    height, width = shape or (cfg.data.height, cfg.data.width)
    runs = f"{len(configs)} runs need" if len(configs) > 1 else "the run needs"
    if step >= 0:
        runs = f"{len(configs)} resumed runs need" if len(configs) > 1 else f"the run resumed at step {step:,} needs"
    raise DiskBudgetError(f"{runs} up to {format_bytes(sum(needed))} of disk ({evaluations_after(cfg, step):,} evaluations, "
                          f"each a {width} x {height} frame) but {runs_dir} has {format_bytes(free)} free; "
                          "evaluate less often (schedule.eval_every) or free some space", field="schedule.eval_every")
