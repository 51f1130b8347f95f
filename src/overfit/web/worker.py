"""The lab's task thread: the lab's creates, one at a time, in order.

Nothing heavy runs on it: a create makes its run folder in a process of its own
(`training.create`) and this thread waits for it. Queuing creates here keeps them one
at a time, so the folder count a create checks cannot race another create, and a burst
of creates never holds more than one process and one thread of the lab.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Worker:
    """A thread that runs queued tasks, one at a time, in order."""

    def __init__(self, name: str = "overfit-lab-worker") -> None:
        self._tasks: queue.Queue[tuple[Callable[[], Any], Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(*args) on the worker thread and return its result (or raise its exception) here."""
        if threading.current_thread() is self._thread:
            return fn(*args)
        future: Future = Future()
        self._tasks.put((lambda: fn(*args), future))
        return future.result()

    def close(self, timeout: float = 30.0) -> None:
        """Finish queued tasks and stop."""
        self._tasks.put(None)
        self._thread.join(timeout)

    def _loop(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            fn, future = task
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as e:  # handed to the waiting request, which raises it
                    future.set_exception(e)
