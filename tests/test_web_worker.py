"""Tests of the lab's one training thread (`web.worker`)."""

from __future__ import annotations

import threading
import time

import pytest

from overfit.web.worker import Worker


def test_the_worker_runs_tasks_on_its_thread_and_hands_back_their_errors():
    worker = Worker()
    try:
        assert worker.call(lambda: threading.current_thread().name) == "overfit-lab-worker"
        with pytest.raises(ZeroDivisionError):
            worker.call(lambda: 1 / 0)
        order: list[str] = []

        class Turns:
            def __init__(self, name: str, n: int) -> None:
                self.name, self.n = name, n

            def train_chunk(self) -> bool:
                order.append(self.name)
                self.n -= 1
                return self.n > 0

        worker.call(lambda: (worker.add(Turns("a", 3)), worker.add(Turns("b", 2))))
        worker.call(lambda: None)  # queued behind the turns
        deadline = time.monotonic() + 60  # a guard against a hang, not a speed limit: the loop ends when all 5 turns ran
        while len(order) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order == ["a", "b", "a", "b", "a"]
    finally:
        worker.close()
