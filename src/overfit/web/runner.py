"""A lab run's training process: the run's `Session`, trained in short chunks, its live view sent to the lab.

(And the lab's creates: `create` makes a run folder with `Session.start` in a process of its
own too, so drawing a new run's picture and samples never holds the lab's interpreter lock.)

Each lab run trains in a process of its own (`training.Training` starts it and listens),
so training never holds the lab's interpreter lock: the lab answers its pages while runs
train, and a run that crashes its process (a segfault, the kernel's OOM killer) takes
nothing else down. The run folder stays the one truth between the two: this process
opens the run with `Session.resume`, exactly as `overfit train --resume` does, holds
the folder's lock while it trains, and records how training stopped in it (paused,
diverged, failed: `endings`); the lab reads the folder again when the process has ended.

Over its end of a pipe the process sends the live view, already shaped as the page's
messages: "started", "tick" (loss points, ~13 a second), "eval" (each evaluation's
record), "preview" (the network drawn small, only while someone watches) and "refused"
(it could not start: a one-line reason with its HTTP status) or "stopped" (after the
folder is let go). It reads commands between chunks: pause, a new step to stop at, its
share of the cores (`threads`), how many watch it. The lab gone (the pipe closed) is a
pause: the run keeps its checkpoint. Ctrl-C belongs to the lab, which pauses every run.

Training happens in chunks (`Session.run(until=...)`, about 0.1 s each). Chunk boundaries
are where the live view is fed and where a pause takes effect, whatever `schedule.log_every`
says. The trainer ends a chunk with a "chunk" event, which the recorder ignores: a running
run does not write a checkpoint every tenth of a second, and a pause between chunks writes
one (`Session.checkpoint`). A run's first chunk is a single step: nothing is known yet about
how long a step of this model takes (a wide network, `compile`), and a pause must not wait
for ten slow ones.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import time
import warnings
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..budget import Pool
from ..config import RunConfig
from ..errors import OverfitError, TrainingDiverged
from ..session import Session
from ..training import Event
from .errors import lab_error, runs_dir_names
from .live import TICK_SECONDS, Previews, finite

log = logging.getLogger("overfit.lab")

# Seconds of training between chunk boundaries: previews and curves update ~10 times a second
# (the issue asks for at least 5), and a pause takes effect within this (plus an evaluation).
CHUNK_SECONDS = 0.1  # = 1 / live.PREVIEW_FPS
# Training yields to the lab: a process at this niceness gets the cores only when the lab's own
# threads (pages, WebSockets) do not want them, so the lab answers promptly however many runs train.
NICENESS = 10


def main(conn: Connection, path: str, until: int | None, memory: int, threads: int, viewers: int,
         setup: Callable[[], Any] | None = None) -> None:
    """The process's body: resume the run in `path` within `memory` bytes on `threads` threads, train, report."""
    _begin(threads, setup, NICENESS)
    try:
        session = Session.resume(path, pool=Pool(memory, source_field=None))  # forgets how it last stopped
    except Exception as e:
        conn.send(_refusal(e, Path(path).parent))
        return
    Chunks(conn, session, until, viewers).run()


def create(conn: Connection, cfg: RunConfig, runs_dir: str, name: str | None, memory: int, upload: str | None,
           setup: Callable[[], Any] | None = None) -> None:
    """A new run folder of `cfg` in `runs_dir` (`Session.start`: config, picture and samples written, nothing trained),
    within `memory` bytes; "created" with its path, or "refused". `upload`: the stored picture the request named."""
    _begin(1, setup)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a one-class picture trains fine (and instantly); the page shows its accuracy
            session = Session.start(cfg, runs_dir, name, pool=Pool(memory, source_field=None))
        session.close()
    except Exception as e:
        conn.send(_refusal(e, Path(runs_dir), upload))
        return
    conn.send({"type": "created", "path": str(session.path)})


def _begin(threads: int, setup: Callable[[], Any] | None, niceness: int = 0) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the lab handles Ctrl-C: it pauses every run through its pipe
    if niceness and hasattr(os, "nice"):  # POSIX
        try:
            os.nice(niceness)
        except OSError:  # not allowed here: train at the lab's priority
            pass
    import torch

    torch.set_num_threads(threads)
    if setup is not None:  # the lab's hook for each of its processes (logging, profiling, tests)
        setup()


def _refusal(e: Exception, runs_dir: Path, upload: str | None = None) -> dict[str, Any]:
    """Why a run could not be made or opened, as the lab answers it: a one-line reason and its HTTP status."""
    if isinstance(e, OverfitError):
        refused = lab_error(e, hide=runs_dir_names(runs_dir), upload=upload)
        return {"type": "refused", "status": refused.status, "detail": refused.detail, "field": refused.field}
    log.error("a lab run could not be made or opened", exc_info=e)  # a bug, not the user's input: the traceback is logged
    return {"type": "refused", "status": 500, "detail": f"internal error: {type(e).__name__}: {e}", "field": None}


class Chunks:
    """One run's training in this process: chunks until it is paused, done or failed, the live view sent between them."""

    def __init__(self, conn: Connection, session: Session, until: int | None, viewers: int) -> None:
        self.conn = conn
        self.session = session
        self.until = until
        self.viewers = viewers
        self.paused = False
        self.chunk = 1  # steps per chunk, adapted to take about CHUNK_SECONDS from the first (timed) one
        self.saved_step = session.trainer.step  # the step of the checkpoint on disk
        self.previews = Previews()
        self._points: list[tuple[int, float]] = []
        self._next_tick = 0.0
        self._loss: float | None = None
        self._steps_per_s: float | None = None

    def run(self) -> None:
        trainer = self.session.trainer
        self._send({"type": "started", "config": trainer.cfg.to_dict(), "step": trainer.step})
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "paused", True))  # stopped by the system: keep a checkpoint
        status, error, recorded = "paused", None, False
        try:
            status = self._train()
        except TrainingDiverged as e:  # its ending (diverged, at which step) is recorded by the session
            kept = "; the last checkpoint is kept" if self.session.folder.has_checkpoint() else ""
            status, error, recorded = "failed", f"{e}{kept}", True
        except OverfitError as e:  # e.g. out of memory: a one-line reason, already recorded by the session
            status, error, recorded = "failed", str(e), True
        except Exception as e:  # a bug, not the user's input: keep the traceback in the lab's log
            log.exception("run %s failed", self.session.folder.path.name)
            status, error = "failed", f"internal error: {type(e).__name__}: {e}"
        self._stop(status, error, recorded)

    # -- the chunks ------------------------------------------------------------------------

    def _goal(self) -> int:
        steps = self.session.trainer.cfg.schedule.steps
        return steps if self.until is None else min(self.until, steps)

    def _train(self) -> str:
        """Chunks until the run is paused or at its goal; 'done' or 'paused'."""
        session, trainer = self.session, self.session.trainer
        steps = trainer.cfg.schedule.steps
        if trainer.step >= steps and not session.folder.finished():
            # Resumed at its last step without its final picture and videos (stopped while writing them):
            # a run with no step left goes straight to its end, which writes them and records it finished.
            session.run([self._on_event])
            return "done"
        while True:
            self._commands()
            if self.paused or trainer.step >= self._goal():
                return "done" if trainer.step >= steps else "paused"
            start, started = trainer.step, time.perf_counter()
            session.run([self._on_event], until=min(self._goal(), trainer.step + self.chunk))
            self._adapt_chunk(trainer.step - start, time.perf_counter() - started)
            if trainer.step >= steps:
                return "done"

    def _commands(self) -> None:
        """What the lab asked for since the last chunk; the lab gone is a pause."""
        try:
            while self.conn.poll():
                name, value = self.conn.recv()
                if name == "pause":
                    self.paused = True
                elif name == "until":
                    self.until = value
                elif name == "threads":
                    import torch

                    torch.set_num_threads(value)
                elif name == "viewers":
                    self.viewers = value
        except (EOFError, OSError):
            self.paused = True

    def _adapt_chunk(self, steps: int, seconds: float) -> None:
        if steps <= 0 or seconds <= 0:
            return
        wanted = steps * CHUNK_SECONDS / seconds
        # Geometric smoothing: one slow chunk (an evaluation, a compile) does not swing it.
        self.chunk = max(1, min(1_000_000, round(math.sqrt(self.chunk * wanted))))

    def _stop(self, status: str, error: str | None, recorded: bool) -> None:
        """Keep the checkpoint a paused run resumes from, let go of the folder, then tell the lab."""
        step = self.session.trainer.step
        try:
            if status == "paused":
                if step != self.saved_step:
                    self.session.checkpoint()
                self.session.record_interrupt("paused in the lab")
        except Exception as e:
            log.exception("run %s: saving the checkpoint failed", self.session.folder.path.name)
            status, error, recorded = "failed", f"cannot save the checkpoint: {type(e).__name__}: {e}", False
        finally:
            if status == "failed" and not recorded:
                try:  # kept in the run folder (still ours: the session holds its lock), for later page loads
                    self.session.record_failure(error or "failed")
                except Exception:
                    log.exception("run %s: cannot record its error in the run folder", self.session.folder.path.name)
            self.session.close()
            self._flush()
            self._send({"type": "stopped", "status": status, "error": error, "step": step})

    # -- the live view ---------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.conn.send(message)
        except (BrokenPipeError, EOFError, OSError):  # the lab is gone: pause at the next boundary
            self.paused = True

    def _on_event(self, event: Event) -> None:
        if event.kind == "log":
            loss = event.metrics.get("loss")
            self._steps_per_s = event.metrics.get("steps_per_s")
            if finite(loss):
                self._loss = loss
                self._points.append((event.step, loss))
            now = time.perf_counter()
            if now >= self._next_tick:
                self._next_tick = now + TICK_SECONDS
                self._flush()
                if self.viewers and self.previews.due(now):
                    self._send(self.previews.draw(event.trainer))
        elif event.kind == "eval":
            self.saved_step = event.step  # the recorder, called first, wrote its checkpoint
            self._flush()
            self._send({"type": "eval", "step": event.step, "record": event.metrics,
                        "frame": event.step if event.prediction is not None else None})

    def _flush(self) -> None:
        """Send the loss points gathered since the last tick."""
        points, self._points = self._points, []
        self._send({"type": "tick", "step": self.session.trainer.step, "loss": self._loss,
                    "steps_per_s": self._steps_per_s, "points": points})
