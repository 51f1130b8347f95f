"""Fan-out of live messages from the listeners of training processes to every watching WebSocket.

A run's listener must never wait for a browser, and the number of open tabs must
not change how fast a run trains. So a listener encodes each message once
(JSON text) and hands it to the server's event loop with one thread-safe call,
whatever the number of viewers; the event loop copies it into each viewer's
mailbox. A mailbox keeps every progress message (curves need each point) but only
the newest preview picture: a slow client skips pictures instead of queueing
them. A client that falls far behind is told to resynchronise from a snapshot.
"""

from __future__ import annotations

import asyncio
import collections
import json
import math
import threading
from typing import Any

# Progress messages a viewer may have unsent before it is resynchronised from a snapshot.
MAILBOX_LIMIT = 512


def clean(value: Any) -> Any:
    """`value` with NaN and infinities as None: JSON has no NaN and browsers refuse it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return clean(value.item())
    return value


def encode(message: dict[str, Any]) -> str:
    return json.dumps(clean(message), separators=(",", ":"))


class Mailbox:
    """One viewer's unsent messages; lives on the event loop."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.messages: collections.deque[str] = collections.deque()
        self.preview: str | None = None
        self.behind = False  # too many unsent messages: send a snapshot instead
        self.wake = asyncio.Event()

    def put(self, text: str, latest_only: bool) -> None:
        if latest_only:
            self.preview = text
        elif len(self.messages) >= MAILBOX_LIMIT:
            self.messages.clear()
            self.behind = True
        else:
            self.messages.append(text)
        self.wake.set()

    async def take(self) -> tuple[bool, list[str]]:
        """Wait for news: (resynchronise?, messages in order, the newest preview last)."""
        await self.wake.wait()
        self.wake.clear()
        behind, self.behind = self.behind, False
        out = list(self.messages)
        self.messages.clear()
        if self.preview is not None:
            out.append(self.preview)
            self.preview = None
        return behind, out


class Mailboxes:
    """The mailboxes of every run's viewers (one per open WebSocket), and `publish` to them from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._boxes: dict[str, set[Mailbox]] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """The event loop that serves the WebSockets (set once the server runs)."""
        self._loop = loop

    def subscribe(self, run_id: str, limit: int | None = None) -> Mailbox | None:
        """A mailbox for a new viewer of `run_id`, or None if `limit` viewers watch it already (call on the event loop)."""
        boxes = self._boxes.setdefault(run_id, set())
        if limit is not None and len(boxes) >= limit:  # checked and added with no await between: no race
            return None
        box = Mailbox(run_id)
        boxes.add(box)
        with self._lock:
            self._counts[run_id] = self._counts.get(run_id, 0) + 1
        return box

    def unsubscribe(self, box: Mailbox) -> None:
        boxes = self._boxes.get(box.run_id)
        if boxes is not None and box in boxes:
            boxes.discard(box)
            with self._lock:
                self._counts[box.run_id] -= 1

    def total(self) -> int:
        """How many viewers watch any run now (any thread)."""
        with self._lock:
            return sum(self._counts.values())

    def viewers(self, run_id: str) -> int:
        """How many viewers watch `run_id` now (any thread): previews are only drawn for someone."""
        with self._lock:
            return self._counts.get(run_id, 0)

    def publish(self, run_id: str, message: dict[str, Any], latest_only: bool = False) -> None:
        """Send `message` to every viewer of `run_id`; from any thread, never blocks."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self.viewers(run_id):
            return
        text = encode(message)  # once, in the caller's thread, not once per viewer
        try:
            loop.call_soon_threadsafe(self._deliver, run_id, text, latest_only)
        except RuntimeError:  # the loop closed between the check and the call (server shutting down)
            pass

    def _deliver(self, run_id: str, text: str, latest_only: bool) -> None:
        for box in self._boxes.get(run_id, ()):
            box.put(text, latest_only)
