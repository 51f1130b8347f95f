"""The live WebSocket of one run: a snapshot, then every tick, preview, evaluation and status change.

The page sends nothing on it (control goes through the HTTP routes); the server
forwards the run's mailbox (`stream.Mailboxes`) as it fills, and a viewer that fell too
far behind gets a fresh snapshot instead of the messages it missed.

A run has at most `max_viewers` live views at once: each costs the server a mailbox
and a copy of every message; and all runs together at most `max_sockets`: each is a
file descriptor, and a thousand idle sockets would leave none for checkpoints. One more
is accepted and closed at once with code 1013 (try again later) and a reason the page shows.
"""

from __future__ import annotations

import asyncio
import logging

from fastapi import FastAPI, WebSocket
from fastapi.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect

from ..limits import most
from .errors import LabError
from .labrun import LabRun
from .manager import RunManager
from .stream import Mailboxes, Mailbox, encode

log = logging.getLogger("overfit.lab")
# Close code for a run that does not exist (4000-4999 are the application's).
NO_SUCH_RUN = 4404
# Close code for a viewer over the cap: RFC 6455's "try again later".
TOO_MANY_VIEWERS = 1013
# Live views of one run at once (browser tabs, each panel that shows the run; `overfit lab --max-viewers`),
# and of all runs together (`limits`).
MAX_VIEWERS = most("viewers")
MAX_SOCKETS = most("sockets")


def too_many_viewers(limit: int) -> str:
    """The close reason for a viewer over the cap (a close frame holds at most 123 bytes of it)."""
    return f"{limit} viewers already watch this run, the lab's limit (--max-viewers); close a tab that shows it"[:123]


def too_many_sockets(limit: int) -> str:
    """The close reason for a viewer over the lab's cap on live views in all."""
    return f"{limit} live views are open in all, the lab's limit; close tabs that show runs"[:123]


def live_route(app: FastAPI, manager: RunManager, mailboxes: Mailboxes, max_viewers: int = MAX_VIEWERS,
               max_sockets: int = MAX_SOCKETS) -> None:
    """WS /api/runs/{id}/live."""

    @app.websocket("/api/runs/{run_id}/live")
    async def live(ws: WebSocket, run_id: str) -> None:
        try:
            run = await run_in_threadpool(manager.get, run_id)
        except LabError:
            await ws.close(code=NO_SUCH_RUN)
            return
        await ws.accept()
        mailboxes.attach(asyncio.get_running_loop())
        # Counted and subscribed with no await between: no other socket slips in.
        full = mailboxes.total() >= max_sockets
        box = None if full else mailboxes.subscribe(run_id, max_viewers)
        if box is None:
            await ws.close(code=TOO_MANY_VIEWERS, reason=too_many_sockets(max_sockets) if full else too_many_viewers(max_viewers))
            return
        try:
            await _serve(ws, run, box)
        except (WebSocketDisconnect, RuntimeError):
            pass  # the tab went away mid-send
        finally:
            mailboxes.unsubscribe(box)


async def _snapshot(ws: WebSocket, run: LabRun) -> None:
    await ws.send_text(encode({"type": "snapshot", "run": await run_in_threadpool(run.detail)}))


async def _serve(ws: WebSocket, run: LabRun, box: Mailbox) -> None:
    """Send the snapshot, then the mailbox, until the page closes the socket."""
    await _snapshot(ws, run)

    async def pump() -> None:
        while True:
            behind, messages = await box.take()
            if behind:  # missed messages: start over from the current state
                await _snapshot(ws, run)
            for text in messages:
                await ws.send_text(text)

    async def until_closed() -> None:
        while (await ws.receive())["type"] != "websocket.disconnect":
            pass

    tasks = [asyncio.create_task(pump()), asyncio.create_task(until_closed())]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in done:
        if task.exception() and not isinstance(task.exception(), (WebSocketDisconnect, RuntimeError)):
            log.warning("live stream of %s ended: %r", run.id, task.exception())
