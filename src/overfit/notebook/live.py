"""The lab's live messages, gathered for a notebook widget instead of WebSockets, sent at a bounded rate.

A lab run (`web.labrun.LabRun`) tells its viewers what happens through a `Mailboxes`:
loss ticks, evaluations, preview pictures and status changes, the page's WebSocket
protocol. `WidgetMailboxes` is that object for a widget: every run it watches has one
viewer (so previews are drawn), and what a run's listener thread publishes is queued, never
sent from that thread (it may hold the run's lock, and must not wait for the kernel's
socket). A sender thread delivers the queue at most `1 / period` times a second: the
progress messages in order, only the newest preview of each run, so a busy front end
gets fewer pictures, never a backlog.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..web.stream import MAILBOX_LIMIT, Mailboxes, clean

# Deliveries per second at most: curves and the preview move about four times a second.
PERIOD_SECONDS = 0.25

log = logging.getLogger("overfit.notebook")

Delivery = Callable[[list[tuple[str, dict[str, Any]]]], None]


class WidgetMailboxes(Mailboxes):
    """One viewer per watched run; published messages delivered in batches by a sender thread."""

    def __init__(self, deliver: Delivery, period: float = PERIOD_SECONDS) -> None:
        super().__init__()
        self._deliver_batch = deliver
        self.period = period
        self._watched: set[str] = set()
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._previews: dict[str, dict[str, Any]] = {}
        self._wake = threading.Event()
        self._sending = threading.Lock()  # one delivery at a time: the thread's, or `flush` from the caller's
        self._closed = False
        self._thread = threading.Thread(target=self._deliver_forever, name="overfit-notebook-sender", daemon=True)
        self._thread.start()

    def watch(self, run_id: str) -> None:
        with self._lock:
            self._watched.add(run_id)

    def viewers(self, run_id: str) -> int:
        with self._lock:
            return int(run_id in self._watched)

    def total(self) -> int:
        with self._lock:
            return len(self._watched)

    def publish(self, run_id: str, message: dict[str, Any], latest_only: bool = False) -> None:
        """Queue `message` (any thread, never blocks on the front end); a preview replaces the run's unsent one."""
        with self._lock:
            if run_id not in self._watched:
                return
            if latest_only:
                self._previews[run_id] = message
            else:
                if len(self._pending) >= MAILBOX_LIMIT:  # nobody takes them: keep the newest, as a slow viewer would
                    del self._pending[: MAILBOX_LIMIT // 2]
                self._pending.append((run_id, message))
        self._wake.set()

    def flush(self) -> None:
        """Deliver what is queued now, in this thread."""
        with self._sending:
            with self._lock:
                batch = self._pending + list(self._previews.items())
                self._pending, self._previews = [], {}
            if batch:
                self._deliver_batch([(run_id, clean(message)) for run_id, message in batch])

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        self._thread.join(5.0)

    def _deliver_forever(self) -> None:  # not `_loop`: that is `Mailboxes`'s event loop attribute
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._closed:
                return
            try:
                self.flush()
            except Exception:  # a front end gone away must not stop the next delivery
                log.exception("cannot deliver live messages to the widget")
            time.sleep(self.period)  # the bound on the rate
