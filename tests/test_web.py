"""Tests for the lab's web API (`overfit lab`): runs, live stream, uploads, refusals, safety.

Every test drives the FastAPI app through its test client, with tiny runs (a 64 x 32
picture, a 16-16 network) in a temporary runs folder.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import re
import socket
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from overfit.cli import main
from overfit.config import describe_fields
from overfit.presets import PRESETS
from overfit.runs import RunFolder, load_checkpoint, read_metrics
from overfit.web import create_app
from overfit.web.pictures import preview_size
from overfit.web.uploads import UPLOAD_DIR

BASE = "http://127.0.0.1"
TINY = {
    "data": {"text": "OV", "width": 64, "height": 32},
    "model": {"hidden": [16, 16]},
    "optim": {"lr": 0.003, "batch_size": 256},
    "schedule": {"steps": 300, "eval_every": 100, "log_every": 10, "eval_batch_size": 256},
}


def tiny(**schedule) -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["schedule"].update(schedule)
    return cfg


@pytest.fixture
def make_lab(tmp_path):
    """A factory of lab clients on tmp_path/runs; every client is closed (runs paused) at the end."""
    clients = []

    def make(**options) -> TestClient:
        client = TestClient(create_app(tmp_path / "runs", **options), base_url=BASE)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def lab(make_lab) -> TestClient:
    return make_lab(max_runs=2)


def create(client: TestClient, config: dict | None = None, **body) -> dict:
    r = client.post("/api/runs", json={"config": config or TINY, **body})
    assert r.status_code == 201, r.text
    return r.json()


def wait_for(client: TestClient, run_id: str, ok, timeout: float = 60.0) -> dict:
    """Poll the run until ok(detail) holds."""
    deadline = time.monotonic() + timeout
    while True:
        detail = client.get(f"/api/runs/{run_id}").json()
        if ok(detail):
            return detail
        assert time.monotonic() < deadline, f"timed out; last state {detail['status']} at step {detail['step']}"
        time.sleep(0.05)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def refusal(r, status: int, field: str | None = None) -> str:
    """A JSON refusal with this status (and field), no traceback and no server path in it."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) <= {"error", "field"} and body["error"], body
    if field is not None:
        assert body.get("field") == field, body
    assert "Traceback" not in r.text and "/tmp" not in r.text and str(Path.cwd()) not in r.text, r.text
    return body["error"]


# -- the page --------------------------------------------------------------------------------------

def test_page_and_its_modules_are_served_and_fetch_nothing_from_the_network(lab):
    page = lab.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    static = Path(__file__).resolve().parents[1] / "src" / "overfit" / "web" / "static"
    files = sorted(p for p in static.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"index.html", "style.css", "state.js", "views.js", "controller.js", "api.js", "charts.js"}
    for path in files:
        served = lab.get("/static/" + path.relative_to(static).as_posix())
        assert served.status_code == 200, path
        assert not re.search(r"https?://", served.text), f"{path.name} refers to the network"
        # Module imports are relative: no bare package names that would need a bundler.
        for spec in re.findall(r"""^import .* from ["']([^"']+)["']""", served.text, re.MULTILINE):
            assert spec.startswith("./"), (path.name, spec)


def test_meta_offers_every_config_field_and_preset(lab):
    meta = lab.get("/api/meta").json()
    assert [f["key"] for f in meta["fields"]] == [f.key for f in describe_fields()]
    by_key = {f["key"]: f for f in meta["fields"]}
    assert "relu" in by_key["model.activation"]["choices"] and by_key["model.hidden"]["type"] == "list of int"
    assert set(meta["presets"]) == set(PRESETS)
    assert meta["presets"]["cos_3"]["config"]["model"]["activation"] == "cos"
    assert len(meta["colour_map"]["stops"]) >= 2 and meta["limits"]["max_runs"] == 2


# -- runs --------------------------------------------------------------------------------------------

def test_a_run_trains_to_the_end_learns_and_offers_its_files(lab, tmp_path):
    run = create(lab, name="first")
    assert run["id"] == "first" and run["status"] == "new" and run["step"] == 0
    folder = tmp_path / "runs" / "first"
    assert json.loads((folder / "config.json").read_text())["model"]["hidden"] == [16, 16]
    assert [r["id"] for r in lab.get("/api/runs").json()["runs"]] == ["first"]

    assert lab.post("/api/runs/first/start").json()["status"] == "running"
    done = wait_for(lab, "first", lambda d: d["status"] == "done")
    assert done["step"] == 300 and done["frames"] == [0, 100, 200, 300]
    accuracy = [v for _, v in done["curves"]["metric"]]
    assert [s for s, _ in done["curves"]["metric"]] == [0, 100, 200, 300]
    assert accuracy[-1] > accuracy[0] + 0.1, accuracy  # it learned
    assert done["curves"]["loss"][-1][1] < done["curves"]["loss"][0][1]
    assert done["metric"] == "dense_acc" and done["metric_value"] == pytest.approx(accuracy[-1])
    assert all(done["files"].values()), done["files"]

    config = lab.get("/api/runs/first/download/config")
    assert config.json() == json.loads((folder / "config.json").read_text())
    assert 'filename="first-config.json"' in config.headers["content-disposition"]
    assert lab.get("/api/runs/first/download/final").content[:8] == b"\x89PNG\r\n\x1a\n"
    assert lab.get("/api/runs/first/download/gif").content[:6] in (b"GIF87a", b"GIF89a")
    assert lab.get("/api/runs/first/download/video").content[4:8] == b"ftyp"
    checkpoint = lab.get("/api/runs/first/download/checkpoint")
    assert checkpoint.content == (folder / "checkpoint.pt").read_bytes()
    # Frames and the target come colour-mapped at the picture's size.
    for url in ("/api/runs/first/frames/300.png", "/api/runs/first/target.png"):
        with Image.open(io.BytesIO(lab.get(url).content)) as img:
            assert img.size == (64, 32) and img.mode == "RGB"
    refusal(lab.post("/api/runs/first/start"), 409)  # finished: nothing left to train


def test_pause_keeps_a_checkpoint_and_frees_the_run_for_the_command_line(lab, tmp_path):
    run_id = create(lab, tiny(steps=100_000, eval_every=100))["id"]
    lab.post(f"/api/runs/{run_id}/start")
    wait_for(lab, run_id, lambda d: d["step"] >= 150)
    paused = lab.post(f"/api/runs/{run_id}/pause").json()
    assert paused["status"] == "paused"
    folder = tmp_path / "runs" / run_id
    assert load_checkpoint(folder)["step"] == paused["step"] > 0
    # The lab let go of the folder: the command line can take it.
    held = RunFolder.open(folder)
    held.lock()
    held.unlock()

    # Step: exactly one evaluation interval, to the next evaluation, then paused again.
    lab.post(f"/api/runs/{run_id}/step")
    stepped = wait_for(lab, run_id, lambda d: d["status"] == "paused")
    assert stepped["step"] == (paused["step"] // 100 + 1) * 100
    assert stepped["frames"][-1] == stepped["step"]
    assert [r["step"] for r in read_metrics(folder)] == list(range(0, stepped["step"] + 1, 100))

    # ... and `overfit train --resume` continues it from there.
    result = CliRunner().invoke(main, ["train", "--resume", str(folder), "--steps", str(stepped["step"] + 100), "-q"])
    assert result.exit_code == 0, result.output
    assert read_metrics(folder)[-1]["step"] == stepped["step"] + 100
    assert lab.get(f"/api/runs/{run_id}").json()["status"] == "done"


def test_reset_starts_a_new_folder_and_keeps_the_old_one(lab, tmp_path):
    old = create(lab, tiny(steps=100_000), name="old")
    lab.post("/api/runs/old/step")
    wait_for(lab, "old", lambda d: d["status"] == "paused" and d["step"] == 100)
    new = lab.post("/api/runs/old/reset")
    assert new.status_code == 201
    fresh = new.json()
    assert fresh["id"] != old["id"] and fresh["step"] == 0 and fresh["status"] == "new"
    assert fresh["config"] == old["config"]
    assert read_metrics(tmp_path / "runs" / "old")[-1]["step"] == 100  # untouched


def test_a_reopened_lab_lists_the_runs_on_disk(make_lab, tmp_path):
    first = make_lab()
    create(first, tiny(steps=100_000), name="kept")
    first.post("/api/runs/kept/step")
    wait_for(first, "kept", lambda d: d["status"] == "paused")
    (tmp_path / "runs" / "not-a-run").mkdir()  # no config.json: not listed

    again = make_lab()
    runs = again.get("/api/runs").json()["runs"]
    assert [(r["id"], r["status"], r["step"]) for r in runs] == [("kept", "paused", 100)]
    detail = again.get("/api/runs/kept").json()
    assert detail["frames"] == [0, 100] and len(detail["curves"]["metric"]) == 2


def test_concurrent_training_is_capped_with_a_clear_message(make_lab):
    lab = make_lab(max_runs=1)
    a = create(lab, tiny(steps=100_000))["id"]
    b = create(lab, tiny(steps=100_000))["id"]
    assert lab.post(f"/api/runs/{a}/start").status_code == 200
    message = refusal(lab.post(f"/api/runs/{b}/start"), 429)
    assert "--max-runs 1" in message and "pause one" in message
    assert lab.get("/api/runs").json()["running"] == 1
    lab.post(f"/api/runs/{a}/pause")
    assert lab.post(f"/api/runs/{b}/start").status_code == 200
    lab.post(f"/api/runs/{b}/pause")


# -- live stream -------------------------------------------------------------------------------------

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
    hub = lab.app.state.hub
    sent = []
    publish = hub.publish
    hub.publish = lambda rid, message, latest_only=False: (sent.append(message["type"]), publish(rid, message, latest_only))
    lab.post(f"/api/runs/{run_id}/start")
    wait_for(lab, run_id, lambda d: d["status"] == "done")
    assert "preview" not in sent


# -- refusals -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"config": {"model": {"hidden": [0]}}}, "model.hidden"),
    ({"config": {"optim": {"lr": "fast"}}}, "optim.lr"),
    ({"config": {"model": {"colour": 1}}}, "model.colour"),
    ({"config": {"schedule": {"steps": 0}}}, "schedule.steps"),
    ({"config": {"data": {"image": "/etc/passwd"}}}, "data.image"),
    ({"config": {"data": {"width": 5000, "height": 5000}}}, "data.width"),
    ({"config": {"device": "no-such-device"}}, "device"),
    ({"config": {}, "upload": "../../etc/passwd"}, "upload"),
    ({"config": {}, "upload": "0" * 64}, "upload"),
    ({"config": {}, "name": "../escape"}, "name"),
    ({"config": {}, "path": "/tmp"}, "path"),
    ({"config": []}, "config"),
])
def test_bad_configs_are_refused_with_422_naming_the_field(lab, tmp_path, body, field):
    refusal(lab.post("/api/runs", json=body), 422, field)
    assert not (tmp_path / "runs").exists() or not [p for p in (tmp_path / "runs").iterdir() if p.name != UPLOAD_DIR]


def test_a_body_that_is_not_json_is_refused(lab):
    refusal(lab.post("/api/runs", content=b"{not json", headers={"content-type": "application/json"}), 422, "body")


@pytest.mark.parametrize("url", [
    "/api/runs/..%2F..%2Fetc%2Fpasswd",
    "/api/runs/%2E%2E",
    "/api/runs/.uploads",
    "/api/runs/run%00x",
    "/api/runs/r/download/..%2Fconfig.json",
    "/api/runs/r/download/config.json",
    "/api/runs/r/download/%2E%2E",
    "/api/runs/r/frames/..%2F..%2Fconfig.json",
    "/api/runs/r/frames/abc.png",
    "/api/runs/r/frames/7.png",
    "/api/runs/..%2Fr/target.png",
    "/api/runs/outside/download/config",
])
def test_paths_outside_a_run_are_never_served(lab, tmp_path, url):
    create(lab, name="r")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (tmp_path / "runs" / "outside").symlink_to(outside)
    r = lab.get(url)
    assert r.status_code in (404, 405), (url, r.status_code, r.text)
    assert "preset" not in r.text and "root:" not in r.text


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


# -- uploads -----------------------------------------------------------------------------------------------

def picture() -> np.ndarray:
    img = np.full((24, 40), 255, np.uint8)
    img[6:18, 8:32] = 0
    return img


def test_an_uploaded_picture_is_stored_by_content_and_becomes_the_target(lab, tmp_path):
    data = png_bytes(picture())
    r = lab.post("/api/uploads", content=data, headers={"content-type": "image/png"})
    assert r.status_code == 201, r.text
    up = r.json()
    assert re.fullmatch(r"[0-9a-f]{64}", up["id"]) and (up["width"], up["height"]) == (40, 24)
    stored = tmp_path / "runs" / UPLOAD_DIR / f"{up['id']}.png"
    assert stored.read_bytes() == data
    assert lab.post("/api/uploads", content=data).json()["id"] == up["id"]  # same bytes, same id
    assert [p.name for p in stored.parent.iterdir()] == [stored.name]  # no temporary files left

    with Image.open(io.BytesIO(lab.get(f"/api/target.png?upload={up['id']}").content)) as img:
        assert img.size == (40, 24)
    run = create(lab, {"schedule": TINY["schedule"], "model": TINY["model"]}, upload=up["id"])
    assert run["upload"] == up["id"] and run["config"]["data"]["image"] is None  # no path reaches the page
    assert (run["height"], run["width"]) == (24, 40)
    saved = json.loads((tmp_path / "runs" / run["id"] / "config.json").read_text())
    assert saved["data"]["image"] == str(stored)


def test_uploads_that_are_not_pictures_are_refused(lab, tmp_path):
    message = refusal(lab.post("/api/uploads", content=b"#!/bin/sh\necho hello\n"), 415, "upload")
    assert "not an image" in message
    refusal(lab.post("/api/uploads", content=b""), 415, "upload")
    truncated = png_bytes(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))[:-200]
    assert "truncated" in refusal(lab.post("/api/uploads", content=truncated), 422, "upload")
    assert not [p for p in (tmp_path / "runs" / UPLOAD_DIR).iterdir()]


def test_a_decompression_bomb_is_refused_from_its_header(lab):
    # A 100000 x 100000 PNG (10 gigapixels) in a few hundred bytes: one compressed row, repeated by nothing.
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 100_001)) + png_chunk(b"IEND", b"")
    assert len(bomb) < 2000
    message = refusal(lab.post("/api/uploads", content=bomb), 422, "upload")
    assert "10000000000 pixels" in message and "limit" in message


def test_an_upload_over_the_size_cap_is_refused(make_lab):
    lab = make_lab(upload_max_bytes=4000)
    big = png_bytes(np.random.default_rng(1).integers(0, 255, (100, 100), dtype=np.uint8))
    assert len(big) > 4000
    refusal(lab.post("/api/uploads", content=big), 413, "upload")

    def chunks():  # no Content-Length: counted as it arrives
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]
    refusal(lab.post("/api/uploads", content=chunks()), 413, "upload")


# -- the command ----------------------------------------------------------------------------------------------

def test_lab_command_refuses_a_busy_port_in_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["lab", "--port", str(port), "--no-browser", "--runs-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert f"Error: cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_lab_command_prints_the_address_and_warns_off_loopback(tmp_path, monkeypatch):
    import uvicorn

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(sockets))
    local = CliRunner().invoke(main, ["lab", "--port", "0", "--no-browser", "--runs-dir", str(tmp_path)])
    assert local.exit_code == 0, local.output
    assert re.search(r"overfit lab: http://127\.0\.0\.1:\d+/", local.output) and "Warning" not in local.output
    public = CliRunner().invoke(main, ["lab", "--host", "0.0.0.0", "--port", "0", "--no-browser", "--runs-dir", str(tmp_path)])
    assert public.exit_code == 0, public.output
    assert "Warning: listening on 0.0.0.0" in public.output and "no login" in public.output
    assert len(started) == 2
    for sockets in started:
        sockets[0].close()


def test_runs_side_by_side_take_turns_on_the_one_worker_thread(lab):
    a, b = (create(lab, tiny(steps=100_000))["id"] for _ in range(2))
    for run_id in (a, b):
        assert lab.post(f"/api/runs/{run_id}/start").json()["status"] == "running"
    for run_id in (a, b):
        wait_for(lab, run_id, lambda d: d["step"] >= 200)
    assert lab.get("/api/runs").json()["running"] == 2
    for run_id in (a, b):
        assert lab.post(f"/api/runs/{run_id}/pause").json()["status"] == "paused"


def test_the_worker_runs_tasks_on_its_thread_and_hands_back_their_errors():
    import threading

    from overfit.web.worker import Worker

    worker = Worker()
    try:
        assert worker.call(lambda: threading.current_thread().name) == "overfit-lab-worker"
        with pytest.raises(ZeroDivisionError):
            worker.call(lambda: 1 / 0)
        order: list[str] = []

        class Turns:
            def __init__(self, name: str, n: int) -> None:
                self.name, self.n = name, n

            def train_chunk(self) -> bool:
                order.append(self.name)
                self.n -= 1
                return self.n > 0

        worker.call(lambda: (worker.add(Turns("a", 3)), worker.add(Turns("b", 2))))
        worker.call(lambda: None)  # queued behind the turns
        deadline = time.monotonic() + 5
        while len(order) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order == ["a", "b", "a", "b", "a"]
    finally:
        worker.close()


# -- small pieces ----------------------------------------------------------------------------------------------

def test_previews_keep_the_pictures_shape_and_are_never_larger():
    assert preview_size(300, 1000) == (77, 258)  # 20000 pixels: a quarter of each side
    assert preview_size(32, 64) == (32, 64)
    assert preview_size(300, 1000, 2000) == (24, 82)
    assert preview_size(1, 100000, 10) == (1, 10)


def test_binary_pictures_go_through_the_colour_map_and_others_do_not():
    from overfit.web.pictures import colour_lut, show, show_target

    lut = colour_lut()
    assert lut.shape == (256, 3) and tuple(lut[0]) == (68, 1, 84) and tuple(lut[255]) == (253, 231, 37)  # viridis ends
    values = np.array([[0.0, 1.0], [0.5, np.nan]], np.float32)
    assert show(values, "binary").tolist() == [[lut[0].tolist(), lut[255].tolist()], [lut[128].tolist(), lut[128].tolist()]]
    assert show(values, "gray").tolist() == [[0, 255], [128, 128]]
    gray = np.array([[200, 100], [129, 128]], np.uint8)  # the original threshold: background above 128
    assert show_target(gray, "binary").tolist() == [[lut[255].tolist(), lut[0].tolist()], [lut[255].tolist(), lut[0].tolist()]]
    assert show_target(gray, "gray") is gray


def test_stream_messages_are_strict_json():
    from overfit.web.stream import encode

    text = encode({"loss": float("nan"), "points": [(1, float("inf")), (2, 0.5)], "n": np.float32(0.25)})
    assert json.loads(text) == {"loss": None, "points": [[1, None], [2, 0.5]], "n": 0.25}
    assert "NaN" not in text and "Infinity" not in text
