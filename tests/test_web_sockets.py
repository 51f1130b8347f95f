"""Tests of the lab's live WebSocket (`web.sockets`, fed by `web.labrun` and `web.live`)."""

from __future__ import annotations

import base64
import io
import itertools

import pytest
from PIL import Image
from web_client import create, lab, make_lab, tiny, wait_for  # noqa: F401  (fixtures)


def test_the_live_stream_sends_previews_curves_and_evaluations(lab):
    run_id = create(lab, tiny(steps=400))["id"]
    seen: dict[str, list] = {}
    with lab.websocket_connect(f"ws://127.0.0.1/api/runs/{run_id}/live") as ws:
        first = ws.receive_json()
        assert first["type"] == "snapshot" and first["run"]["id"] == run_id and first["run"]["frames"] == []
        lab.post(f"/api/runs/{run_id}/start")
        while True:
            msg = ws.receive_json()
            seen.setdefault(msg["type"], []).append(msg)
            if msg["type"] == "status" and msg["run"]["status"] == "done":
                break
    assert [m["frame"] for m in seen["eval"]] == [0, 100, 200, 300, 400]
    assert [m["record"]["step"] for m in seen["eval"]] == [0, 100, 200, 300, 400]
    assert {m["metric"] for m in seen["eval"]} == {"dense_acc"}
    points = [p for m in seen["tick"] for p in m["points"]]
    assert points and all(a[0] < b[0] for a, b in itertools.pairwise(points))  # in order, none twice
    assert seen["preview"], "no live preview was sent"
    preview = seen["preview"][-1]
    with Image.open(io.BytesIO(base64.b64decode(preview["png"]))) as img:
        assert img.size == (preview["width"], preview["height"])
        assert 32 <= img.width <= 64 and img.width == pytest.approx(2 * img.height, abs=1)  # the picture's shape, never larger
        assert img.mode == "RGB"  # binary: colour-mapped


def test_previews_are_drawn_only_while_someone_watches(lab):
    run_id = create(lab, tiny(steps=300))["id"]
    mailboxes = lab.app.state.mailboxes
    sent = []
    publish = mailboxes.publish
    mailboxes.publish = lambda rid, message, latest_only=False: (sent.append(message["type"]), publish(rid, message, latest_only))
    lab.post(f"/api/runs/{run_id}/start")
    wait_for(lab, run_id, lambda d: d["status"] == "done")
    assert "preview" not in sent


def test_a_socket_for_no_such_run_is_closed(lab):
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as closed, lab.websocket_connect("ws://127.0.0.1/api/runs/nothing/live") as ws:
        ws.receive_json()
    assert closed.value.code == 4404


def test_viewers_of_one_run_are_capped_and_the_one_over_is_told_why(make_lab):
    from starlette.websockets import WebSocketDisconnect

    lab = make_lab(max_viewers=2)
    run_id = create(lab)["id"]
    other = create(lab)["id"]
    url = f"ws://127.0.0.1/api/runs/{run_id}/live"
    with lab.websocket_connect(url) as one, lab.websocket_connect(url) as two:
        assert one.receive_json()["type"] == two.receive_json()["type"] == "snapshot"
        with pytest.raises(WebSocketDisconnect) as refused, lab.websocket_connect(url) as three:
            three.receive_json()
        assert refused.value.code == 1013  # try again later
        assert "2 viewers already watch this run" in refused.value.reason and "--max-viewers" in refused.value.reason
        with lab.websocket_connect(f"ws://127.0.0.1/api/runs/{other}/live") as elsewhere:  # the cap is per run
            assert elsewhere.receive_json()["type"] == "snapshot"
        assert lab.get(f"/api/runs/{run_id}").json()["viewers"] == 2
    with lab.websocket_connect(url) as again:  # the places are free again
        assert again.receive_json()["type"] == "snapshot"


def test_live_views_of_all_runs_together_are_capped(make_lab):
    from starlette.websockets import WebSocketDisconnect

    # Before, only each run's views were capped: a thousand idle sockets over many runs used up the file descriptors.
    lab = make_lab(max_sockets=2)
    runs = [create(lab)["id"] for _ in range(3)]
    url = "ws://127.0.0.1/api/runs/{}/live"
    with lab.websocket_connect(url.format(runs[0])) as one, lab.websocket_connect(url.format(runs[1])) as two:
        assert one.receive_json()["type"] == two.receive_json()["type"] == "snapshot"
        with pytest.raises(WebSocketDisconnect) as refused, lab.websocket_connect(url.format(runs[2])) as three:
            three.receive_json()
        assert refused.value.code == 1013 and "2 live views are open in all" in refused.value.reason
    with lab.websocket_connect(url.format(runs[2])) as again:  # closing frees the places
        assert again.receive_json()["type"] == "snapshot"
