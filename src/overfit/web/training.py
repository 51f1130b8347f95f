"""A lab run training: its `Session`, trained in short chunks on the lab's one worker thread.

A run holds a `Session` (trainer and locked run folder) only while it trains:
pausing saves the checkpoint and lets go of both, so a paused lab run can be
continued from the command line (`overfit train --resume runs/NAME`) with the lab
still open, and the lab picks up whatever the command line left when it starts the
run again (`Session.resume`, exactly as the command line resumes).

Training happens in chunks (`Session.run(until=...)`, about 0.1 s each) on the one
`worker.Worker` thread, the runs taking turns. Chunk boundaries are where the live
view is fed (previews, curves) and where a pause takes effect, whatever
`schedule.log_every` says. The trainer ends a chunk with a "chunk" event, which the
run folder's recorder ignores: a running run does not write a checkpoint every tenth
of a second, and a pause between chunks writes one (`Session.checkpoint`). A run's first
chunk is a single step: nothing is known yet about how long a step of this model takes
(a wide network, `compile`), and a pause must not wait for ten slow ones.

How a run stopped (paused, diverged, failed) is recorded in its folder as every front end
records it (`Session.record_interrupt`, `Session.record_failure`, `endings`), so the page shows why after
a reload or a restart of the lab; starting it again clears it. Every run training in the lab
holds its share of one memory budget (the manager's `budget.Pool`), so runs that train at
the same time are checked together.
"""

from __future__ import annotations

import logging
import math
import threading
import time

from ..budget import Pool
from ..errors import OverfitError, TrainingDiverged
from ..session import Session
from ..training import Event
from .errors import LabError, lab_error, runs_dir_names
from .labrun import LabRun
from .worker import Worker

log = logging.getLogger("overfit.lab")

# Seconds of training between chunk boundaries: previews and curves update ~10 times a second
# (the issue asks for at least 5), and a pause takes effect within this (plus an evaluation).
CHUNK_SECONDS = 0.1  # = 1 / live.PREVIEW_FPS
# Longest round of turns when several runs train: each run then still gets a turn, and so a
# preview, at least 5 times a second (the floor), at the price of shorter chunks.
ROUND_SECONDS = 0.2
# How long a pause waits for the run to reach a chunk boundary (an evaluation or the final video may be in between).
JOIN_SECONDS = 120.0


class Training:
    """One run's turns on the worker: `train_chunk` until it is paused, done or failed."""

    def __init__(self, run: LabRun, session: Session, worker: Worker) -> None:
        self.run = run
        self.session = session
        self.worker = worker
        self.chunk = 1  # steps per turn, adapted to take about CHUNK_SECONDS from the first (timed) one
        self.saved_step = session.trainer.step  # the step of the checkpoint on disk
        self.pause = threading.Event()
        self.stopped = threading.Event()

    @classmethod
    def begin(cls, run: LabRun, until: int | None, worker: Worker, pool: Pool) -> Training:
        """Resume `run` from its folder (in the lab's memory budget `pool`) and give it turns on the worker thread
        (the manager checked the cap on runs)."""
        if run.folder.status() == "done":
            raise LabError(409, f"run {run.id} is finished (step {run.step:,} of {run.cfg.schedule.steps:,}); start a new run, "
                                f"or train it further from the command line: overfit train --resume {run.path.parent.name}/{run.id} --steps N")
        try:
            session = Session.resume(run.path, pool=pool)  # forgets how it last stopped: it trains again
        except OverfitError as e:
            raise lab_error(e, hide=runs_dir_names(run.path.parent)) from None
        try:
            training = cls(run, session, worker)
            trainer = session.trainer
            run.started(training, trainer.cfg, trainer.step, until)
            worker.add(training)
        except BaseException:
            session.close()  # its lock and its share of the lab's memory
            raise
        return training

    def request_pause(self) -> None:
        self.pause.set()

    def join(self, timeout: float = JOIN_SECONDS) -> None:
        """Wait until the run has stopped (its checkpoint written, its folder unlocked)."""
        self.stopped.wait(timeout)

    def _goal(self) -> int:
        steps, until = self.session.trainer.cfg.schedule.steps, self.run.until
        return steps if until is None else min(until, steps)

    def _on_event(self, event: Event) -> None:
        if event.kind == "eval":
            self.saved_step = event.step  # the recorder, called first, wrote its checkpoint
        self.run.observe(event)

    def train_chunk(self) -> bool:
        """One turn on the worker thread: train ~CHUNK_SECONDS; False once the run has stopped."""
        trainer = self.session.trainer
        steps = trainer.cfg.schedule.steps
        try:
            goal = self._goal()
            if trainer.step >= steps and not self.session.folder.finished():
                # Resumed at its last step without its final picture and videos (stopped while writing them):
                # a run with no step left goes straight to its end, which writes them and records it finished.
                self.session.run([self._on_event])
                return self._stop("done")
            if self.pause.is_set() or trainer.step >= goal:
                return self._stop("done" if trainer.step >= steps else "paused")
            start, started = trainer.step, time.perf_counter()
            self.session.run([self._on_event], until=min(goal, trainer.step + self.chunk))
            self._adapt_chunk(trainer.step - start, time.perf_counter() - started, self.worker.turns)
            if trainer.step >= steps:
                return self._stop("done")
            return True
        except TrainingDiverged as e:  # its ending (diverged, at which step) is recorded by the session
            kept = "; the last checkpoint is kept" if self.run.folder.has_checkpoint() else ""
            return self._stop("failed", f"{e}{kept}", recorded=True)
        except OverfitError as e:  # e.g. out of memory: a one-line reason, already recorded by the session
            return self._stop("failed", str(e), recorded=True)
        except Exception as e:  # a bug, not the user's input: keep the traceback in the server log
            log.exception("run %s failed", self.run.id)
            return self._stop("failed", f"internal error: {type(e).__name__}: {e}")

    def _stop(self, status: str, error: str | None = None, recorded: bool = False) -> bool:
        """Leave the rotation: keep the checkpoint a paused run resumes from, let go of the folder."""
        step = self.session.trainer.step
        try:
            if status == "paused":
                if step != self.saved_step:
                    self.session.checkpoint()
                self.session.record_interrupt("paused in the lab")
        except Exception as e:
            log.exception("run %s: saving the checkpoint failed", self.run.id)
            status, error = "failed", f"cannot save the checkpoint: {type(e).__name__}: {e}"
        finally:
            if status == "failed" and not recorded:
                self._record_error(error or "failed")
            self.session.close()
            self.run.stopped(status, error, step)
            self.stopped.set()
        return False

    def _record_error(self, error: str) -> None:
        """Keep the reason in the run folder (still ours: the session holds its lock), for later page loads."""
        try:
            self.session.record_failure(error)
        except Exception:
            log.exception("run %s: cannot record its error in the run folder", self.run.id)

    def _adapt_chunk(self, steps: int, seconds: float, turns: int) -> None:
        if steps <= 0 or seconds <= 0:
            return
        wanted = steps * min(CHUNK_SECONDS, ROUND_SECONDS / max(1, turns)) / seconds
        # Geometric smoothing: one slow chunk (an evaluation, a compile) does not swing it.
        self.chunk = max(1, min(1_000_000, round(math.sqrt(self.chunk * wanted))))
