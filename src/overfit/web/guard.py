"""Who may talk to the lab: the Host and Origin checks in front of every route.

Bound to loopback, only loopback Host headers are served, so a web page cannot reach
the lab through DNS rebinding (a name of the attacker's that resolves to 127.0.0.1).
Any request that changes something, or opens a WebSocket, from a page of another
origin is refused, so another site open in the same browser cannot start runs or
upload pictures (cross-site request forgery). Reading is allowed from anywhere the
Host check lets in: the browser's same-origin policy keeps the answers from other
sites' pages.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from fastapi.responses import JSONResponse

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# Methods that only read; everything else changes something and must come from the lab's own page.
READ_METHODS = ("GET", "HEAD", "OPTIONS")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str) -> set[str] | None:
    """Host names served when the lab binds `host`: the loopback names, or None (any) off loopback."""
    return set(LOOPBACK_NAMES) | {host} if is_loopback(host) else None


class Guard:
    """ASGI middleware: only expected Host headers; nothing that changes state from another origin."""

    def __init__(self, app: Any, allowed_hosts: set[str] | None) -> None:
        self.app = app
        self.allowed = allowed_hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
        if self.allowed is not None and hostname not in self.allowed:
            return await self._refuse(scope, receive, send, 421, f"this lab answers only to {', '.join(sorted(self.allowed))}, not {host!r}")
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method") not in READ_METHODS
        if changes and origin is not None and origin.split("://", 1)[-1] != host:
            return await self._refuse(scope, receive, send, 403, f"requests from pages of another origin ({origin}) are refused")
        await self.app(scope, receive, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403})
            return
        await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
