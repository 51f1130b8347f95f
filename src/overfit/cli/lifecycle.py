"""The command line's side of the run lifecycle: progress bars, one line per run, Ctrl-C's exit code.

`overfit train` (one run, several presets, --seeds, or --resume) hands its sessions to
`train_and_report`, which trains them through `session.train_sessions` (the one lifecycle:
recorder first, stacks, memory, Ctrl-C, how each run ended) and presents the outcome:
a summary line per run, an `Error:` line for a run that diverged or ran out of memory
(naming the checkpoint that is kept), and for Ctrl-C the command that continues each run,
with exit code 130.
"""

from __future__ import annotations

import sys
import time
from typing import Any, Sequence

import click

from ..config import RunConfig
from ..errors import AllocationError
from .errors import fail, message
from .progress import Progress

# Up to this many runs get a progress bar each; more share one.
MAX_BARS = 12


def run_name(cfg: RunConfig, name: str | None) -> str:
    """`NAME-preset-sSEED`, or `preset-sSEED-YYYYmmdd-HHMMSS` without --name."""
    from ..runs import auto_name  # here, not at the top: `overfit train --help` imports this module and no numpy

    return f"{name}-{cfg.preset}-s{cfg.seed}" if name else auto_name(f"{cfg.preset}-s{cfg.seed}")


class SharedProgress:
    """One bar for many runs: their steps added up, and the range of their headline metric."""

    def __init__(self, trainers: Sequence[Any], quiet: bool) -> None:
        from tqdm import tqdm

        self.trainers = list(trainers)
        self.bar = tqdm(total=sum(t.cfg.schedule.steps for t in trainers), initial=sum(t.step for t in trainers),
                        unit="step", disable=quiet, dynamic_ncols=True, file=sys.stderr, smoothing=0.1,
                        desc=f"{len(trainers)} runs")
        self.mode = trainers[0].mode

    def __call__(self, event: Any) -> None:
        if event.kind in ("log", "eval"):
            self.bar.update(sum(t.step for t in self.trainers) - self.bar.n)
            scores = [t.history[-1][self.mode.headline] for t in self.trainers if t.history]
            if scores:
                low, high = min(scores), max(scores)
                self.bar.set_postfix_str(f"{self.mode.headline_label} {self.mode.format_headline(low)} .. "
                                         f"{self.mode.format_headline(high)}", refresh=False)

    def close(self) -> None:
        self.bar.close()


def train_and_report(sessions: Sequence[Any], quiet: bool) -> None:
    """Train the sessions (one or many, new or resumed) to their end and report each; exits 1 or 130 where it must.

    One run reports as `overfit train` always has ("PATH: ... after N steps (X s training, Y s in
    all)"); several add a line with their total time.
    """
    from ..session import train_sessions

    trainers = [s.trainer for s in sessions]
    one = len(sessions) == 1
    if len(sessions) <= MAX_BARS:
        bars: list[Any] = [Progress(t, quiet, desc=None if one else s.path.name) for s, t in zip(sessions, trainers)]
        callbacks = [[bar] for bar in bars]
    else:
        shared = SharedProgress(trainers, quiet)
        bars, callbacks = [shared], [[shared] for _ in sessions]
    started = time.perf_counter()
    try:
        results = train_sessions(sessions, callbacks)
    except AllocationError as e:  # the new runs without a checkpoint have been removed
        kept = sorted(str(s.path) for s in sessions if s.folder.has_checkpoint())
        raise fail(message(e) + (f"; the checkpoint{'s are' if len(kept) > 1 else ' is'} kept in {', '.join(kept)}"
                                 if kept else "")) from None
    finally:
        for bar in bars:
            bar.close()

    failed = interrupted = 0
    for session, result in zip(sessions, results):
        t = session.trainer
        if result.diverged is not None:
            failed += 1
            last = t.history[-1]["step"] if t.history else None
            kept = (f"; the last good checkpoint (step {last:,}) is kept in {session.path}"
                    if last is not None and session.folder.has_checkpoint() else "")
            if one:
                raise fail(message(result.diverged) + kept)
            click.echo(f"Error: {session.path}: {message(result.diverged)}{kept}", err=True)
        elif result.interrupted:
            interrupted += 1
            click.echo(f"{session.path}: interrupted at step {result.step:,}, checkpoint saved; continue with: "
                       f"overfit train --resume {session.path}", err=True)
        else:
            took = f" ({t.train_seconds:.1f} s training, {time.perf_counter() - started:.0f} s in all)" if one else ""
            click.echo(f"{session.path}: {t.mode.summary(result.history[-1])} after {result.step:,} steps{took}")
    if not one:
        click.echo(f"{len(sessions)} runs in {time.perf_counter() - started:.0f} s", err=True)
    if failed:
        sys.exit(1)
    if interrupted:
        sys.exit(130)
