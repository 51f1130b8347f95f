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


# A GET from another site's page: <img src>, fetch() in no-cors mode, or a CORS fetch. The token alone does not
# let it in (a cookie rides along with any of them); another port of the same host is another site too.
CROSS_SITE_GETS = [
    {"origin": "http://evil.example"},
    {"origin": "http://127.0.0.1:9999"},
    {"origin": "null"},
    {"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors", "sec-fetch-dest": "image"},
    {"sec-fetch-site": "same-site", "sec-fetch-mode": "cors"},
    {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},  # a link to an API address, not to the page
]


@pytest.mark.parametrize("headers", CROSS_SITE_GETS)
def test_reads_from_other_sites_are_refused_even_with_the_token(lab, headers):
    # Before, only requests that change something were checked: any page could make the lab draw big targets in a loop.
    message = refusal(lab.get("/api/target.png?width=4096&height=4096", headers=headers), 403)
    assert "another" in message
    refusal(lab.get("/api/runs", headers=headers), 403)


def test_reads_from_the_page_itself_or_the_user_are_served(lab):
    for headers in ({"sec-fetch-site": "same-origin", "origin": BASE}, {"sec-fetch-site": "none"}, {}):
        assert lab.get("/api/target.png?width=64&height=32", headers=headers).status_code == 200
    # A link to the lab's page from elsewhere opens it (it is the static page; the strict cookie is not sent with it).
    assert lab.get("/", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"}).status_code == 200
    refusal(lab.get("/", headers={"sec-fetch-site": "cross-site", "sec-fetch-mode": "no-cors"}), 403)


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


@pytest.fixture
def local_lab(tmp_path):
    """A lab on loopback, as `overfit lab` starts it by default, reached as http://127.0.0.1:8765 without its token."""
    app = create_app(tmp_path / "runs", max_runs=1, token="l0cal-token")
    with TestClient(app, base_url="http://127.0.0.1:8765") as client:
        yield client


def test_on_loopback_every_request_needs_the_token_too(local_lab):
    # Before, loopback asked for nothing: any user or program of the machine could start runs and download.
    assert "access token" in refusal(local_lab.get("/api/runs"), 403)
    assert "access token" in refusal(local_lab.post("/api/runs", json={"config": TINY}), 403)
    assert "wrong access token" in refusal(local_lab.get("/api/runs", headers={"authorization": "Bearer guess"}), 403)
    r = local_lab.get("/?token=l0cal-token", follow_redirects=False)
    assert r.status_code == 303 and r.headers["set-cookie"].startswith("overfit_lab_8765=l0cal-token;")
    assert local_lab.get("/api/runs").status_code == 200  # the cookie now


def test_the_token_cookie_is_named_after_the_port(local_lab):
    # Browsers send a host's cookies to all its ports: the name keeps each port's lab apart.
    local_lab.cookies.set("overfit_lab_9000", "l0cal-token")
    assert "access token" in refusal(local_lab.get("/api/runs"), 403)  # another port's cookie is not ours
    assert local_lab.get("/api/runs", headers={"host": "127.0.0.1:9000"}).status_code == 200
    local_lab.cookies.clear()
    local_lab.cookies.set("overfit_lab_8765", "an-old-token")  # left by the lab that ran on this port before
    assert "wrong access token" in refusal(local_lab.get("/api/runs"), 403)
    r = local_lab.get("/?token=l0cal-token", follow_redirects=False)
    assert "overfit_lab_8765=l0cal-token" in r.headers["set-cookie"]  # the address printed replaces it


def test_no_token_is_for_loopback_only(tmp_path):
    app = create_app(tmp_path / "runs", no_token=True)
    assert app.state.token is None
    with TestClient(app, base_url=BASE) as client:
        assert client.get("/api/runs").status_code == 200
        refusal(client.get("/api/target.png?width=64&height=32", headers={"sec-fetch-site": "cross-site"}), 403)
    for host in ("0.0.0.0", "10.0.0.5", "::"):
        with pytest.raises(ValueError, match="needs its access token"):
            create_app(tmp_path / "runs", host=host, no_token=True)


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


def test_a_random_token_is_made_on_every_interface(tmp_path):
    tokens = {create_app(tmp_path / "runs", host=host).state.token for host in ("0.0.0.0", "127.0.0.1", "127.0.0.1", "::1")}
    assert len(tokens) == 4 and all(re.fullmatch(r"[A-Za-z0-9_-]{43}", t) for t in tokens)  # 256 random bits each
