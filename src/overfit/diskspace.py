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


def disk_estimate(cfg: RunConfig, target_shape: tuple[int, int] | None = None) -> int:
    """Bytes a run of `cfg` can write at most over its whole schedule, on a picture of `target_shape`."""
    est = estimate(cfg, target_shape)
    height, width = target_shape or (cfg.data.height, cfg.data.width)
    pixels, channels = height * width, get_mode(cfg.data.mode).picture_channels
    evaluations = cfg.schedule.evaluation_count()
    frames = evaluations * (pixels * channels + FILE_OVERHEAD)
    metrics = evaluations * (METRICS_LINE + LAYER_LINE * len(cfg.model.hidden))
    snapshots = min(evaluations, WEIGHT_SNAPSHOTS + 1) * est.parameters * 2 if est.parameters <= SNAPSHOT_PARAMS else 0
    checkpoint = next(p.bytes for p in est.parts if p.name == "checkpoint")
    return frames + metrics + snapshots + checkpoint + PICTURES * pixels * 3


def _free(folder: Path) -> int:
    """Free bytes on the file system that holds `folder` (or its nearest existing parent)."""
    probe = folder.resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def check_disk(configs: Sequence[RunConfig], shapes: Sequence[tuple[int, int] | None], runs_dir: str | os.PathLike) -> None:
    """Refuse runs that together may write more than DISK_SHARE of the free space where `runs_dir` is."""
    needed = [disk_estimate(cfg, shape) for cfg, shape in zip(configs, shapes)]
    free = _free(Path(runs_dir))
    if sum(needed) <= DISK_SHARE * free:
        return
    big = max(range(len(configs)), key=needed.__getitem__)
    cfg, shape = configs[big], shapes[big]
    height, width = shape or (cfg.data.height, cfg.data.width)
    runs = f"{len(configs)} runs need" if len(configs) > 1 else "the run needs"
    raise DiskBudgetError(f"{runs} up to {format_bytes(sum(needed))} of disk ({cfg.schedule.evaluation_count():,} evaluations, "
                          f"each a {width} x {height} frame) but {runs_dir} has {format_bytes(free)} free; "
                          "evaluate less often (schedule.eval_every) or free some space", field="schedule.eval_every")
