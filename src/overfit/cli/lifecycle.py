"""`overfit train` with several presets or --seeds: many runs at once, one run folder each.

Every run starts through `session.Session` (so each folder is an ordinary run folder that
`--resume`, `render` and `export` take), and runs of one shape train stacked
(`stacked.train_stacks`). Nothing is created unless every config is valid.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import Any, Sequence

import click

from ..config import RunConfig
from ..errors import AllocationError
from ..runs import auto_name
from .errors import fail, message
from .progress import Progress
from .target import load_target

# Up to this many runs get a progress bar each; more share one.
MAX_BARS = 12


def run_name(cfg: RunConfig, name: str | None) -> str:
    """`NAME-preset-sSEED`, or `preset-sSEED-YYYYmmdd-HHMMSS` without --name."""
    return f"{name}-{cfg.preset}-s{cfg.seed}" if name else auto_name(f"{cfg.preset}-s{cfg.seed}")


class ManyProgress:
    """One bar for many runs: their steps added up, and the range of their headline metric."""

    def __init__(self, trainers: Sequence[Any], quiet: bool) -> None:
        from tqdm import tqdm

        self.trainers = list(trainers)
        self.bar = tqdm(total=sum(t.cfg.schedule.steps for t in trainers), initial=sum(t.step for t in trainers),
                        unit="step", disable=quiet, dynamic_ncols=True, file=sys.stderr, smoothing=0.1,
                        desc=f"{len(trainers)} runs")
        self.mode = trainers[0].mode

    def callback(self, trainer: Any) -> Any:
        def on_event(event: Any) -> None:
            if event.kind in ("log", "eval"):
                self.bar.update(sum(t.step for t in self.trainers) - self.bar.n)
                scores = [t.history[-1][self.mode.headline] for t in self.trainers if t.history]
                if scores:
                    low, high = min(scores), max(scores)
                    self.bar.set_postfix_str(f"{self.mode.headline_label} {self.mode.format_headline(low)} .. "
                                             f"{self.mode.format_headline(high)}", refresh=False)
        return on_event

    def close(self) -> None:
        self.bar.close()


def train_many_new(configs: Sequence[RunConfig], runs_dir: str, name: str | None, quiet: bool,
                   max_memory: int | None = None) -> None:
    """Start a run folder for each config and train them all; one summary line per run.

    The runs train at the same time, so their memory estimates add up (`budget.check_together`)
    against the budget: `max_memory` bytes, or half the available memory.
    """
    from ..budget import check_together
    from ..memory import raising_allocation_errors
    from ..session import Session
    from ..stacked import train_stacks
    from ..training import Trainer

    # Bad input fails here, before any folder is made: pictures first (a file is read for
    # its size; text is not rendered yet), then the memory of all the runs together.
    targets: dict[Any, Any] = {}
    for cfg in configs:
        if cfg.data.image is not None and cfg.data not in targets:
            targets[cfg.data] = load_target(cfg.data)
    shapes = [(targets[c.data].height, targets[c.data].width) if c.data in targets else None for c in configs]
    est = check_together(configs, max_memory, shapes)
    with raising_allocation_errors("starting the runs", est.largest.fields):
        for cfg in configs:
            if cfg.data not in targets:
                targets[cfg.data] = load_target(cfg.data)
            Trainer(cfg, targets[cfg.data])  # checks the device, the model and everything else the config implies
    sessions: list[Any] = []
    try:
        for cfg in configs:
            # Each run on its own is within the budget when all of them together are.
            sessions.append(Session.start(cfg, runs_dir, run_name(cfg, name), target=targets[cfg.data], max_memory=est.total))
    except BaseException:
        for session in sessions:
            session.discard()
        raise

    trainers = [s.trainer for s in sessions]
    if len(sessions) <= MAX_BARS:
        bars: list[Any] = [Progress(t, quiet, desc=s.path.name) for s, t in zip(sessions, trainers)]
        callbacks = [[s.recorder, bar] for s, bar in zip(sessions, bars)]
    else:
        shared = ManyProgress(trainers, quiet)
        bars = [shared]
        callbacks = [[s.recorder, shared.callback(t)] for s, t in zip(sessions, trainers)]

    def stop_all(signum: int, frame: Any) -> None:
        for t in trainers:
            t.request_stop()

    previous = signal.signal(signal.SIGINT, stop_all)
    started = time.perf_counter()
    try:
        with raising_allocation_errors("training", est.largest.fields):
            results = train_stacks(trainers, callbacks)
    except AllocationError as e:
        for session in sessions:  # the runs that have no checkpoint yet leave no folder
            session.abandon()
        kept = sorted(str(s.path) for s in sessions if s.path.is_dir())
        raise fail(message(e) + (f"; the checkpoints are kept in {', '.join(kept)}" if kept else "")) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        for bar in bars:
            bar.close()
        for session in sessions:
            session.close()

    failed = interrupted = 0
    for session, result in zip(sessions, results):
        if result.diverged is not None:
            failed += 1
            click.echo(f"Error: {session.path}: {message(result.diverged)}", err=True)
        elif result.interrupted:
            interrupted += 1
            click.echo(f"{session.path}: interrupted at step {result.step:,}; continue with: overfit train --resume {session.path}",
                       err=True)
        else:
            click.echo(f"{session.path}: {session.trainer.mode.summary(result.history[-1])} after {result.step:,} steps")
    click.echo(f"{len(sessions)} runs in {time.perf_counter() - started:.0f} s", err=True)
    if failed:
        sys.exit(1)
    if interrupted:
        sys.exit(130)
