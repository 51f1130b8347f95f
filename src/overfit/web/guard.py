"""Who may talk to the lab: the Host, cross-site and access-token checks in front of every route.

Only the Host names the lab was told about are served: the loopback names, the address
it binds, and each `--allow-host`. So a web page cannot reach the lab through DNS
rebinding (a name of the attacker's that resolves to the lab's address): its requests
carry the attacker's name as their Host.

Every request must carry the lab's access token, on every interface, loopback included
(any other user or program of the machine reaches a loopback port too): random, made with
`secrets` at start-up and printed in the address, as Jupyter does. It comes as the `token`
query parameter, once (the answer keeps it in an HttpOnly, SameSite=Strict cookie named
after the port, so a lab restarted on the same port replaces its cookie, and the page's
address is reloaded without it), or as an `Authorization: Bearer` header; WebSockets send
the cookie or the query parameter. `overfit lab --no-token` serves without one, on loopback
only.

No request from a page of another site is served, reads included (`cross_site`): a page
that may not read the answers could still make the lab draw 4096 x 4096 targets in a loop.
The rule, from the headers browsers set themselves (a page's script cannot forge them):

- `Origin` present and not this lab's own address (scheme aside): refused, any method.
- `Sec-Fetch-Site` present and neither `same-origin` nor `none` (typed, bookmarked or
  opened from outside a browser): refused; `same-site` too, since another port of the same
  host is another program. The one exception is navigating to the page itself (`GET /`,
  `Sec-Fetch-Mode: navigate`, a link on another site): it returns the static page and
  starts nothing, and the SameSite=Strict cookie is not sent with it.
- Neither header (scripts, curl, browsers too old to send them): let through to the token
  check, which then has to authenticate the request. With `--no-token` nothing does, which
  is what that option accepts: any program of this machine may use the lab.

A request that passes all this still needs the token; same-origin alone is no login.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi.responses import JSONResponse, RedirectResponse

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
# Addresses that mean "every interface": not a name any request is addressed to.
ANY_ADDRESS = ("0.0.0.0", "::", "")
# A host name (RFC 1123 labels) or an IPv4 address; IPv6 addresses are checked by `ipaddress`.
_HOST_NAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# The cookie that keeps the token, named after the port the browser reached the lab on: browsers share a host's
# cookies among its ports, so two labs on one machine keep theirs apart, and a lab restarted on a port replaces its own.
COOKIE_PREFIX = "overfit_lab_"
# What `Sec-Fetch-Site` may say of a request the lab serves: its own page, or the user (typed, bookmarked).
OWN_SITE = ("same-origin", "none")
# Status of a request addressed to a Host name the lab does not serve: on loopback the lab answers
# 421 (misdirected: no such site here), off loopback 403, like a missing token.
LOOPBACK_HOST_STATUS, OPEN_HOST_STATUS = 421, 403


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(value: str) -> str:
    """`value` as a Host name to allow (lower case, no brackets, no trailing dot); ValueError if it is none."""
    name = value.strip().lower().rstrip(".")
    name = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        pass
    if not _HOST_NAME.match(name):
        raise ValueError(f"{value!r} is not a host name or address (like mybox.local or 10.0.0.5; no scheme, port or path)")
    return name


def allowed_hosts(host: str, allow: Iterable[str] = ()) -> set[str]:
    """Host names served when the lab binds `host`: the loopback names, `host` itself (unless it means
    every interface) and each of `allow`."""
    names = set(LOOPBACK_NAMES) | {host_name(h) for h in allow}
    if host not in ANY_ADDRESS:
        names.add(host_name(host))
    return names


def new_token() -> str:
    """A random access token: 256 bits, URL-safe."""
    return secrets.token_urlsafe(32)


def cookie_name(port: int) -> str:
    """The token cookie of the lab the browser reaches on `port`."""
    return f"{COOKIE_PREFIX}{port}"


def _request_host(headers: dict[str, str]) -> str:
    """The Host header's name: lower case, without the port or an IPv6 address's brackets."""
    host = headers.get("host", "").strip().lower()
    name = host[1:].split("]")[0] if host.startswith("[") else host.rsplit(":", 1)[0]
    return name.rstrip(".")


def _request_port(scope: dict, headers: dict[str, str]) -> int:
    """The port in the Host header (the one the browser keys its cookies by), else the scheme's."""
    host = headers.get("host", "").strip()
    tail = host.rsplit("]", 1)[-1] if host.startswith("[") else host
    _, colon, port = tail.rpartition(":")
    if colon and port.isdigit() and len(port) <= 5:
        return int(port)
    return 443 if scope.get("scheme") in ("https", "wss") else 80


def cross_site(scope: dict, headers: dict[str, str]) -> str | None:
    """Why this request comes from a page of another site (the rule in the module's docstring), or None."""
    origin = headers.get("origin")
    if origin is not None and origin.split("://", 1)[-1].lower() != headers.get("host", "").lower():
        return f"requests from pages of another origin ({origin[:100]}) are refused"
    site = headers.get("sec-fetch-site")
    if site is None or site.lower() in OWN_SITE:
        return None
    page = scope["type"] == "http" and scope.get("method") in ("GET", "HEAD") and scope.get("path") == "/"
    if page and headers.get("sec-fetch-mode", "").lower() == "navigate":
        return None
    return f"requests from pages of another site are refused (Sec-Fetch-Site: {site[:20]}); open the lab's own address"


class Guard:
    """ASGI middleware: only allowed Host headers; nothing from another site; the access token (None: `--no-token`)."""

    def __init__(self, app: Any, allowed_hosts: set[str], token: str | None, host_status: int = LOOPBACK_HOST_STATUS) -> None:
        self.app = app
        self.allowed = allowed_hosts
        self.token = token
        self.host_status = host_status

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        if _request_host(headers) not in self.allowed:
            names = ", ".join(sorted(self.allowed))
            hint = "" if self.host_status == LOOPBACK_HOST_STATUS else " (start it with --allow-host NAME to add a name)"
            return await self._refuse(scope, receive, send, self.host_status, f"this lab answers only to {names}, not {host!r}{hint}")
        refused = cross_site(scope, headers)
        if refused is not None:
            return await self._refuse(scope, receive, send, 403, refused)
        query_token, cookie = None, cookie_name(_request_port(scope, headers))
        if self.token is not None:
            query_token, given = self._given_token(scope, headers, cookie)
            if given is None:
                return await self._refuse(scope, receive, send, 403, "this lab needs its access token: open the address "
                                          "`overfit lab` printed (it ends in ?token=...)")
            if not secrets.compare_digest(given.encode(), self.token.encode()):
                return await self._refuse(scope, receive, send, 403, "wrong access token (the lab makes a new one each time it "
                                          "starts): open the address `overfit lab` printed")
        if query_token is None or scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope.get("method") in ("GET", "HEAD") and scope.get("path") == "/":
            # The page's own address: keep the token in the cookie and take it out of the address bar
            # (and so out of the history, copied links and Referer headers).
            rest = urlencode([(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
                              if k != "token"])
            response = RedirectResponse("/" + (f"?{rest}" if rest else ""), status_code=303)
            self._set_cookie(response.raw_headers, cookie)
            return await response(scope, receive, send)

        async def send_with_cookie(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": list(message.get("headers", []))}
                self._set_cookie(message["headers"], cookie)
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _given_token(self, scope: dict, headers: dict[str, str], cookie: str) -> tuple[str | None, str | None]:
        """(the token from the query, if any; the token the request gives: query, else Authorization, else cookie)."""
        query = [v for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True) if k == "token"]
        if query:
            return query[-1], query[-1]
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return None, credentials.strip()
        try:
            cookies = SimpleCookie(headers.get("cookie", ""))
        except CookieError:
            return None, None
        morsel = cookies.get(cookie)
        return None, morsel.value if morsel is not None else None

    def _set_cookie(self, raw_headers: list[tuple[bytes, bytes]], cookie: str) -> None:
        value = f"{cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict"
        raw_headers.append((b"set-cookie", value.encode("latin-1")))

    async def _refuse(self, scope: dict, receive: Any, send: Any, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403})
            return
        await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
