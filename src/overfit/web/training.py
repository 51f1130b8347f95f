"""A lab run training: its process (`runner`), started, listened to and stopped from the lab.

Each run the lab trains has a process of its own, so the lab's threads never wait for
the interpreter lock behind training, and each process gets its share of the cores
(`threads`, set again whenever a run starts or stops). The run folder is the one truth
between them: the process resumes the run from it with `Session.resume`, as
`overfit train --resume` does, and records how it stopped there; once the process has
ended, the lab reads the folder again (`LabRun.stopped`). A paused lab run can so be
continued from the command line with the lab still open, and the lab picks up whatever
the command line left when it starts the run again.

While the run trains, a listener thread folds the process's messages into the `LabRun`
(its curves, its last evaluation) and passes them on to the page's live views. A process
that ends without saying how it stopped (killed, crashed) is recorded as failed in its
folder, with why, by the lab: the run resumes from its last checkpoint, and nothing else
is touched. Every run training in the lab holds its share of one memory budget (the
manager's `budget.Pool`), reserved here before its process starts, so runs that train at
the same time are checked together.

Processes come from a fork server that has imported torch and trained a tiny run once
(`preload`): a run or a create starts in a fifth of a second, not in the seconds a fresh
interpreter takes, no process is forked from the lab's threads, and none runs the
caller's `__main__` again.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..budget import Pool
from ..config import RunConfig
from ..endings import Ending
from ..errors import OverfitError, RunBusyError, RunFolderError
from ..runs import RunFolder
from . import runner
from .errors import LabError, lab_error, runs_dir_names
from .labrun import LabRun

log = logging.getLogger("overfit.lab")

# How long a start waits for its process to open the run (build the model, read the checkpoint).
START_SECONDS = 300.0
# How long a pause waits for the run to reach a chunk boundary (an evaluation or the final video may be in between).
JOIN_SECONDS = 120.0
# How long the lab tries to take a dead process's run folder to record why it died.
LOCK_SECONDS = 10.0

_context: Any = None
_context_lock = threading.Lock()


def context() -> Any:
    """The multiprocessing context the lab's processes come from: a fork server, warm (`preload`)."""
    global _context
    with _context_lock:
        if _context is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload([f"{__package__}.preload"])
            else:  # Windows: each process starts a fresh interpreter (seconds, not a fifth of one)
                ctx = multiprocessing.get_context("spawn")
            _context = ctx
        return _context


@contextmanager
def _main_left_behind() -> Iterator[None]:
    """Start processes that do not run the caller's `__main__` again: they run only `runner`'s functions, and a
    script without an `if __name__ == "__main__":` guard (a `Lab` in a plain script) would otherwise start anew in each."""
    main = sys.modules.get("__main__")
    with _context_lock:
        saved = {name: main.__dict__.pop(name) for name in ("__file__", "__spec__") if main is not None and name in main.__dict__}
        try:
            if main is not None:
                main.__spec__ = None
            yield
        finally:
            if main is not None:
                main.__dict__.pop("__spec__", None)
                main.__dict__.update(saved)


def start(process: Any) -> None:
    """Start `process` (from `context()`), leaving the caller's `__main__` behind."""
    with _main_left_behind():
        process.start()


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def answer(process: Any, conn: Any, what: str, timeout: float = START_SECONDS) -> dict[str, Any]:
    """The first message of a process just started; one that ended first, or never answered, is refused as what
    happened to it (`what`: whose process, for the message)."""
    try:
        if conn.poll(timeout):
            return conn.recv()
    except (EOFError, OSError):
        pass
    if process.is_alive():  # it never answered: it is stuck, and it goes
        process.kill()
    process.join(JOIN_SECONDS)
    return {"type": "refused", "status": 500, "detail": f"the process of {what} {died(process)}"}


def died(process: Any) -> str:
    """What happened to a process that ended without saying how."""
    code = process.exitcode
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed ({name}{': out of memory, or stopped by another program' if name == 'SIGKILL' else ''})"
    return "did not answer and was stopped" if code is None else f"exited with code {code}"


def create(cfg: RunConfig, runs_dir: Path, name: str | None, memory: int, upload: str | None,
           setup: Callable[[], Any] | None = None) -> Path:
    """A new run folder (`runner.create`, in a process of its own); LabError with its reason when it cannot be made."""
    ctx = context()
    here, there = ctx.Pipe()
    process = ctx.Process(target=runner.create, name="overfit-create", daemon=True,
                          args=(there, cfg, str(runs_dir), name, memory, upload, setup))
    start(process)
    there.close()
    try:
        message = answer(process, here, "a new run")
    finally:
        here.close()
        process.join(JOIN_SECONDS)
    if message.get("type") != "created":
        raise LabError(message.get("status", 500), message.get("detail", "the run could not be made"), field=message.get("field"))
    return Path(message["path"])


class Training:
    """One run's training process, seen from the lab: started by `begin`, stopped by `request_pause`."""

    def __init__(self, run: LabRun, process: Any, conn: Any, release: Callable[[], None],
                 on_stopped: Callable[[Training], None]) -> None:
        self.run = run
        self.process = process
        self.conn = conn
        self.threads = 0
        self.stopped = threading.Event()
        self._release = release
        self._on_stopped = on_stopped
        self._send_lock = threading.Lock()
        self._viewers = 0

    @classmethod
    def begin(cls, run: LabRun, until: int | None, pool: Pool, threads: int,
              on_stopped: Callable[[Training], None] = lambda _: None, setup: Callable[[], Any] | None = None) -> Training:
        """Start `run`'s process (its memory reserved in the lab's `pool` first) and wait until it trains.

        LabError when it cannot: finished, over the budget, or refused by its folder (its reason, one line)."""
        hide = runs_dir_names(run.path.parent)
        folder = RunFolder(run.path)
        if folder.status() == "done":
            raise LabError(409, f"run {run.id} is finished (step {run.step:,} of {run.cfg.schedule.steps:,}); start a new run, "
                                f"or train it further from the command line: overfit train --resume {run.path.parent.name}/{run.id} --steps N")
        try:
            _, release = pool.reserve(folder.config(), folder.target_size())
        except OverfitError as e:
            raise lab_error(e, hide=hide) from None
        ctx = context()
        here, there = ctx.Pipe()
        viewers = run.mailboxes.viewers(run.id)
        try:
            process = ctx.Process(target=runner.main, name=f"overfit-run-{run.id}", daemon=True,
                                  args=(there, str(run.path), until, pool.limit, threads, viewers, setup))
            start(process)
        except BaseException:
            release()
            raise
        there.close()  # the process holds its end: ours reads EOF when it ends
        training = cls(run, process, here, release, on_stopped)
        training.threads, training._viewers = threads, viewers
        first = answer(process, here, f"run {run.id}")
        if first.get("type") != "started":
            training._end(first)
            raise LabError(first.get("status", 500), first.get("detail", "the run's process ended"), field=first.get("field"))
        run.started(training, first["config"], first["step"], until)
        threading.Thread(target=training._listen, name=f"overfit-listen-{run.id}", daemon=True).start()
        return training

    # -- commands ------------------------------------------------------------------------

    def _command(self, name: str, value: Any = None) -> None:
        with self._send_lock:
            try:
                self.conn.send((name, value))
            except (BrokenPipeError, EOFError, OSError):  # it has ended; the listener tells the run
                pass

    def request_pause(self) -> None:
        self._command("pause")

    def set_until(self, until: int | None) -> None:
        self._command("until", until)

    def set_threads(self, threads: int) -> None:
        if threads != self.threads:
            self.threads = threads
            self._command("threads", threads)

    def join(self, timeout: float | None = JOIN_SECONDS) -> None:
        """Wait until the run has stopped (its checkpoint written, its folder unlocked and read again)."""
        self.stopped.wait(timeout)

    # -- listening -------------------------------------------------------------------------

    def _listen(self) -> None:
        """Fold the process's messages into the run until the process ends; then read the folder again."""
        said = None
        while True:
            try:
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a message that does not unpickle: a bug; the process is stopped, not trusted
                if self.conn.closed:
                    break
                log.exception("run %s: unreadable message from its process", self.run.id)
                self.request_pause()
                continue
            if message.get("type") == "stopped":
                said = message
                continue
            try:
                self.run.apply(message)
            except Exception:
                log.exception("run %s: a message from its process could not be shown", self.run.id)
            viewers = self.run.mailboxes.viewers(self.run.id)
            if viewers != self._viewers:
                self._viewers = viewers
                self._command("viewers", viewers)
        self._end(said)

    def _end(self, said: dict[str, Any] | None) -> None:
        """The process has ended (or is ending): record a death it could not, give back its share, tell the run."""
        self.process.join(JOIN_SECONDS)
        error = None
        if said is None or said.get("type") not in ("stopped", "refused"):
            error = self._death()
            self._record_failure(error)
        try:
            self.conn.close()
        except OSError:
            pass
        self._release()
        if said is None or said.get("type") != "refused":
            self.run.stopped(error)
            self._on_stopped(self)
        self.stopped.set()

    def _death(self) -> str:
        """What happened to a process that ended without saying how training stopped."""
        return f"the training process of run {self.run.id} {died(self.process)}; it resumes from its last checkpoint"

    def _record_failure(self, error: str) -> None:
        """Keep why in the run folder (its lock went with the process), at the last step it reached."""
        folder = RunFolder(self.run.path)
        try:
            deadline = time.monotonic() + LOCK_SECONDS
            while True:  # the dead process's lock is free; only a moment's probe of the folder can be in the way
                try:
                    folder.lock()
                    break
                except RunBusyError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            try:
                # At least its last evaluation on disk: the process may have written one the lab had not heard of yet,
                # and an ending older than the last record would not count.
                last = folder.metrics()[-1:]
                step = last[0]["step"] if last and isinstance(last[0].get("step"), int) else 0
                step = max(self.run.step, step)
                folder.write_ending(Ending("failed", step, error))
            finally:
                folder.unlock()
        except (RunFolderError, OSError) as e:  # held by another process by now, or not writable: the page still says why
            log.warning("run %s: cannot record its failure in the run folder: %s", self.run.id, e)
