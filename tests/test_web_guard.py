"""Tests of the lab's Host and Origin checks (`web.guard`)."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect
from web_client import BASE, create, lab, make_lab, refusal  # noqa: F401  (fixtures)

from overfit.web.guard import allowed_hosts, is_loopback


def test_requests_from_other_sites_and_hosts_are_refused(lab):
    create(lab, name="r")
    refusal(lab.get("/api/runs", headers={"host": "evil.example"}), 421)
    refusal(lab.post("/api/runs/r/start", headers={"origin": "http://evil.example"}), 403)
    assert lab.post("/api/runs/r/pause", headers={"origin": BASE}).status_code == 200  # the page itself
    with pytest.raises(WebSocketDisconnect) as refused, \
            lab.websocket_connect("ws://127.0.0.1/api/runs/r/live", headers={"origin": "http://evil.example"}) as ws:
        ws.receive_json()
    assert refused.value.code == 4403
    assert lab.get("/api/runs/r").json()["status"] == "new"


def test_only_loopback_addresses_count_as_local():
    assert all(is_loopback(h) for h in ("127.0.0.1", "127.8.9.1", "::1", "[::1]", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "192.168.1.2", "example.org", ""))
    assert allowed_hosts("127.0.0.1") == {"127.0.0.1", "localhost", "::1"}
    assert allowed_hosts("0.0.0.0") is None  # off loopback every Host is served (the command warns)
