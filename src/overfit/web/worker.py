"""The lab's one training thread: every PyTorch call of every lab run happens on it.

Why one thread for all runs: PyTorch's CPU kernels already spread each operation
over all cores (OpenMP). Two runs training in two threads at once ask for twice the
cores there are, and OpenMP's helper threads, which belong to the thread that
started them, keep spinning and starve the others when the work moves between
threads. Measured on the 2-core development machine: two relu_1 runs in two
threads trained at ~110 steps/s each, the same two runs taking turns in one thread
at ~200-250 steps/s each. So runs take turns, one short chunk (~0.1 s) each, and
requests that need torch (building a trainer, reading a checkpoint) are queued to
this thread as tasks; a request waits at most about one chunk per training run.

It also settles who may touch a model: only this thread, ever (live previews
included), so no lock is needed around any of them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

log = logging.getLogger("overfit.lab")
T = TypeVar("T")


class Turn(Protocol):
    def train_chunk(self) -> bool:
        """Train one chunk; False when the run has stopped (paused, done, failed) and leaves the rotation."""


class Worker:
    """A thread that runs queued tasks first, and otherwise gives each active run a turn."""

    def __init__(self, name: str = "overfit-lab-worker") -> None:
        self._tasks: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._turns: list[Turn] = []  # touched only by the worker thread
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the worker thread and return its result (or raise its exception) here."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        future: Future = Future()
        self._tasks.put((lambda: fn(*args), future))
        return future.result()

    def add(self, turn: Turn) -> None:
        """Give `turn` chunks from now on (call on the worker thread, e.g. from a task)."""
        assert threading.current_thread() is self._thread
        self._turns.append(turn)

    @property
    def turns(self) -> int:
        """How many runs take turns now."""
        return len(self._turns)

    def close(self, timeout: float = 30.0) -> None:
        """Finish queued tasks and stop (after the runs were paused)."""
        self._tasks.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            # -- tasks first: a request is waiting on each; block only when nothing trains --
            try:
                task = self._tasks.get(block=not self._turns)
            except queue.Empty:
                task = ()
            if task is None:
                return
            if task:
                fn, future = task
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn())
                    except BaseException as e:  # handed to the waiting request, which raises it
                        future.set_exception(e)
                continue
            # -- then one chunk for each training run, in turn --
            for turn in list(self._turns):
                try:
                    keep = turn.train_chunk()
                except Exception:  # train_chunk reports its own failures; this is a bug in it
                    log.exception("a lab run failed outside its own error handling")
                    keep = False
                if not keep:
                    self._turns.remove(turn)
