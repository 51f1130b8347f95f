"""Tests of the lab's one torch thread (`web.worker`)."""

from __future__ import annotations

import threading

import pytest

from overfit.web.worker import Worker


def test_the_worker_runs_tasks_on_its_thread_in_order_and_hands_back_their_errors():
    worker = Worker()
    try:
        assert worker.call(lambda: threading.current_thread().name) == "overfit-lab-worker"
        with pytest.raises(ZeroDivisionError):
            worker.call(lambda: 1 / 0)
        order: list[int] = []
        callers = [threading.Thread(target=worker.call, args=(order.append, i)) for i in range(20)]
        for t in callers:
            t.start()
        for t in callers:
            t.join(60)
        assert sorted(order) == list(range(20))  # every task ran once
        assert worker.call(lambda: worker.call(lambda: 7)) == 7  # a task that calls the worker runs it in place
    finally:
        worker.close()
    assert not worker._thread.is_alive()
