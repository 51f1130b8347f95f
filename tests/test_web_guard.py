"""Tests of the lab's Host, access-token and Origin checks (`web.guard`)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from web_client import BASE, TINY, create, lab, make_lab, refusal  # noqa: F401  (fixtures)

from overfit.web import create_app
from overfit.web.guard import allowed_hosts, host_name, is_loopback


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


def test_off_loopback_only_the_names_given_are_served():
    loopback = {"127.0.0.1", "localhost", "::1"}
    assert allowed_hosts("0.0.0.0") == loopback  # no name of its own: other machines need --allow-host
    assert allowed_hosts("0.0.0.0", ["MyBox.local.", "10.0.0.5", "[fe80::1]"]) == loopback | {"mybox.local", "10.0.0.5", "fe80::1"}
    assert allowed_hosts("10.0.0.5") == loopback | {"10.0.0.5"}
    for bad in ("http://mybox.local", "mybox.local:8765", "my box", "", "a/b"):
        with pytest.raises(ValueError, match="not a host name"):
            host_name(bad)


@pytest.fixture
def open_lab(tmp_path):
    """A lab bound to every interface, reached as http://mybox.local (allowed), with a known token."""
    app = create_app(tmp_path / "runs", max_runs=1, host="0.0.0.0", allow_hosts=["mybox.local"], token="s3cret-token")
    with TestClient(app, base_url="http://mybox.local") as client:
        yield client


def test_off_loopback_every_request_needs_the_token(open_lab):
    assert "access token" in refusal(open_lab.get("/api/runs"), 403)
    assert "access token" in refusal(open_lab.get("/"), 403)
    assert "wrong access token" in refusal(open_lab.get("/api/runs?token=guess"), 403)
    assert "wrong access token" in refusal(open_lab.get("/api/runs", headers={"authorization": "Bearer guess"}), 403)
    assert open_lab.get("/api/runs", headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    assert not open_lab.cookies  # a header is not remembered
    with pytest.raises(WebSocketDisconnect) as refused, \
            open_lab.websocket_connect("ws://mybox.local/api/runs/r/live", headers={"origin": "http://mybox.local"}) as ws:
        ws.receive_json()
    assert refused.value.code == 4403


def test_the_token_in_the_address_is_kept_in_a_strict_cookie_and_dropped_from_the_address(open_lab):
    r = open_lab.get("/?token=s3cret-token&x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/?x=1"
    cookie = r.headers["set-cookie"]
    assert "s3cret-token" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    # The browser now sends the cookie: the page, the API and the live WebSocket answer without the token in the address.
    assert open_lab.get("/").status_code == 200
    run = open_lab.post("/api/runs", json={"config": TINY, "name": "r"}, headers={"origin": "http://mybox.local"})
    assert run.status_code == 201, run.text
    with open_lab.websocket_connect("ws://mybox.local/api/runs/r/live", headers={"origin": "http://mybox.local"}) as ws:
        assert ws.receive_json()["type"] == "snapshot"


def test_off_loopback_a_name_not_allowed_is_refused_even_with_the_token(open_lab):
    message = refusal(open_lab.get("/api/runs?token=s3cret-token", headers={"host": "evil.example"}), 403)
    assert "evil.example" in message and "--allow-host" in message
    assert open_lab.get("/api/runs?token=s3cret-token", headers={"host": "127.0.0.1:8765"}).status_code == 200


def test_off_loopback_a_random_token_is_made_and_on_loopback_none(tmp_path):
    tokens = {create_app(tmp_path / "runs", host="0.0.0.0").state.token for _ in range(2)}
    assert len(tokens) == 2 and all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)  # 256 random bits each
    assert create_app(tmp_path / "runs").state.token is None
