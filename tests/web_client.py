"""Shared pieces of the lab's tests (not a test module): a lab on a temporary runs folder, tiny runs, refusal checks.

Every test drives the FastAPI app through its test client, with tiny runs (a 64 x 32
picture, a 16-16 network) in a temporary runs folder. Test modules import the
fixtures by name: `from web_client import lab, make_lab`.
"""

from __future__ import annotations

import io
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from overfit.web import create_app

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


def client_of(app, **options) -> TestClient:
    """A test client of the lab `app` that sends its access token with every request (as a script would)."""
    return TestClient(app, base_url=BASE, headers={"authorization": f"Bearer {app.state.token}"}, **options)


@pytest.fixture
def make_lab(tmp_path):
    """A factory of lab clients on tmp_path/runs; every client is closed (runs paused) at the end."""
    clients = []

    def make(**options) -> TestClient:
        client = client_of(create_app(tmp_path / "runs", **options))
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
