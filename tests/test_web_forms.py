"""Tests of what the page sends (`web.forms`): configs validated as the command line validates them, plus the lab's rules."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from helpers import run_async
from web_client import lab, make_lab, refusal  # noqa: F401  (fixtures)

from overfit.web.uploads import UPLOAD_DIR


@pytest.mark.parametrize("body, field", [
    ({"config": {"model": {"hidden": [0]}}}, "model.hidden"),
    ({"config": {"optim": {"lr": "fast"}}}, "optim.lr"),
    ({"config": {"model": {"colour": 1}}}, "model.colour"),
    ({"config": {"schedule": {"steps": 0}}}, "schedule.steps"),
    ({"config": {"data": {"image": "/etc/passwd"}}}, "data.image"),
    ({"config": {"data": {"width": 5000, "height": 5000}}}, "data.width"),
    ({"config": {"data": {"text": ""}}}, "data.text"),
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


def test_a_body_over_the_limit_is_refused_without_reading_the_rest(lab):
    from starlette.requests import Request

    from overfit.web.errors import LabError
    from overfit.web.forms import MAX_JSON_BYTES, read_body

    assert "more than the limit of 1,048,576" in refusal(lab.post("/api/runs", content=b" " * (MAX_JSON_BYTES + 1)), 413, "body")
    chunk, pulled = b" " * 65536, []

    async def receive():  # an endless body without a Content-Length, as a client may send it
        pulled.append(len(chunk))
        return {"type": "http.request", "body": chunk, "more_body": True}

    request = Request({"type": "http", "method": "POST", "headers": [], "path": "/api/runs"}, receive)
    with pytest.raises(LabError) as info:
        run_async(read_body(request))
    # Before, the whole body was read first and measured after: an endless one was read forever.
    assert info.value.status == 413 and info.value.field == "body"
    assert sum(pulled) == MAX_JSON_BYTES + len(chunk)
    declared = Request({"type": "http", "method": "POST", "headers": [(b"content-length", b"99999999")], "path": "/"}, receive)
    pulled.clear()
    with pytest.raises(LabError, match="99,999,999 or more bytes"):
        run_async(read_body(declared))
    assert not pulled  # refused from the header alone


def test_the_target_a_run_would_fit_is_drawn_as_its_mode_shows_it(lab):
    for mode, shown in (("binary", "RGB"), ("gray", "L"), ("rgb", "RGB")):
        r = lab.get(f"/api/target.png?text=HI&width=40&height=20&mode={mode}")
        assert r.status_code == 200, r.text
        with Image.open(io.BytesIO(r.content)) as img:
            assert img.size == (40, 20) and img.mode == shown
    refusal(lab.get("/api/target.png?text=HI&width=40&height=20&mode=sepia"), 422, "data.mode")
    refusal(lab.get("/api/target.png?text=&width=40&height=20"), 422, "data.text")
