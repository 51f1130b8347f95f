"""Property tests of the lab's JSON endpoints: no generated request is ever answered with a 500.

Generated requests: run configs (a tiny valid config with fields replaced by values of
the wrong type, at or beyond their limits, or unknown keys), raw request bodies,
uploads (damaged pictures and random bytes), target previews with any query, and the
run routes with any run id. Every answer must be below 500, and a refusal must be the
lab's JSON {"error": ..., "field": ...}. Examples are derandomized; the values are kept
small enough that no valid request builds a big model or picture.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_properties_targets import damaged_pictures, random_files, valid_pictures
from web_client import TINY, client_of, make_lab, png_bytes  # noqa: F401  (fixture)

from overfit import configio
from overfit.config import RunConfig
from overfit.fields import CHOICES
from overfit.web import create_app

# Pillow warns about the damage it reads past in damaged uploads; that is the point here.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:PIL")
SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# Names the config's choices take, so that mutations reach valid configs as well as refused ones.
NAMES = ["none", "fourier", "positional", "grid", "relu", "tanh", "cos", "siren", "gauss", "binary", "gray", "rgb",
         "fp32", "bf16", "auto", "mse", "cross_entropy", "double_softmax", "original", "torch", "cpu", "cuda", "meta", "mps"]
# Numbers at and beyond every limit; none that is valid builds more than a tiny model.
EDGE_NUMBERS = [0, 1, 2, 3, -1, 2**31, 2**63, -(2**63), 10**30, 10**400, 0.0, -0.0, 1e-300, 1e300,
                float("nan"), float("inf"), float("-inf"), 0.5, 0.999999, 1.0]
small_values = (st.none() | st.booleans() | st.integers(-3, 300) | st.sampled_from(EDGE_NUMBERS)
                | st.floats(-1e6, 1e6, allow_nan=False) | st.text(max_size=12) | st.sampled_from(NAMES))
web_values = st.recursive(small_values, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=8)
LEAF_KEYS = configio.leaf_keys(RunConfig)
PATHS = LEAF_KEYS + sorted({key.split(".")[0] for key in LEAF_KEYS if "." in key})
UPLOAD_IDS = st.none() | st.text(max_size=70) | st.text("0123456789abcdef", min_size=64, max_size=64) | small_values


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A lab on a fresh runs folder with one tiny run ("seed") and one uploaded picture; requests never raise in the client.

    A new run's samples plot (a second of matplotlib, drawn after every check) is left out.
    """
    runs = tmp_path_factory.mktemp("lab") / "runs"
    client = client_of(create_app(runs, max_runs=1), raise_server_exceptions=False)
    with pytest.MonkeyPatch.context() as mp, client:
        mp.setattr("overfit.plots.save_samples_plot", lambda *args, **kwargs: None)
        config = json.loads(json.dumps(TINY))
        config["schedule"].update(steps=100_000, eval_every=10)  # never reaches its end (and its videos) in these tests
        assert client.post("/api/runs", json={"config": config, "name": "seed"}).status_code == 201
        picture = np.zeros((16, 24), np.uint8)
        picture[4:12, 6:18] = 255
        up = client.post("/api/uploads", content=png_bytes(picture))
        assert up.status_code == 201, up.text
        client.upload_id = up.json()["id"]
        yield client


def answered(r) -> None:
    """Not a server error; a refusal is the lab's JSON with a one-line message."""
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400 and r.headers.get("content-type", "").startswith("application/json"):
        body = r.json()
        assert isinstance(body.get("error"), str) and body["error"], body
        assert "\n" not in body["error"] and "Traceback" not in r.text, body


def set_path(data: dict, path: str, value: Any) -> None:
    *sections, last = path.split(".")
    for part in sections:
        child = data.get(part)
        if not isinstance(child, dict):
            child = data[part] = {}
        data = child
    data[last] = value


def plausible(key: str) -> st.SearchStrategy:
    """Values of the field's own type, small: many make a valid config, none a big model."""
    if key in CHOICES:
        return st.sampled_from(CHOICES[key])
    default = configio.get_path(RunConfig(), key)
    if isinstance(default, bool):
        return st.booleans()
    if isinstance(default, int) or default is None:
        return st.integers(-1, 64) | st.none()
    if isinstance(default, float):
        return st.sampled_from([default / 2, default, default * 2, 0.5, 1, 1e-3])
    if isinstance(default, tuple):
        return st.lists(st.integers(0, 32), max_size=3)
    return st.sampled_from(NAMES) | st.text(max_size=8)


@st.composite
def run_requests(draw: st.DrawFn) -> Any:
    """A request body for POST /api/runs: mostly TINY with a few changes, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(web_values)
    config = json.loads(json.dumps(TINY))
    for _ in range(draw(st.integers(0, 2))):
        if draw(st.integers(0, 7)) == 0:  # a key that does not exist, anywhere
            set_path(config, draw(st.sampled_from(["", "data.", "model.", "optim."])) + draw(st.text(min_size=1, max_size=10)),
                     draw(small_values))
            continue
        key = draw(st.sampled_from(PATHS))
        set_path(config, key, draw(plausible(key) if key in LEAF_KEYS and draw(st.booleans()) else web_values))
    body: dict[str, Any] = {"config": config}
    if draw(st.integers(0, 3)) == 0:
        body["upload"] = draw(UPLOAD_IDS | st.just("<the upload>"))
    if draw(st.integers(0, 3)) == 0:
        body["name"] = draw(st.text(max_size=20) | st.from_regex(r"[a-z][a-z0-9._-]{0,12}", fullmatch=True) | small_values)
    if draw(st.integers(0, 9)) == 0:
        body[draw(st.text(max_size=8))] = draw(small_values)
    return body


def fill_upload(value: Any, upload_id: str) -> Any:
    if isinstance(value, dict):
        return {k: fill_upload(v, upload_id) for k, v in value.items()}
    return upload_id if value == "<the upload>" else value


def test_creating_a_run_from_any_request_is_never_a_server_error(lab):
    statuses = set()

    @settings(SETTINGS, max_examples=50)
    @given(run_requests())
    def check(body):
        r = lab.post("/api/runs", content=json.dumps(fill_upload(body, lab.upload_id)).encode(),
                     headers={"content-type": "application/json"})
        answered(r)
        statuses.add(r.status_code)

    check()
    assert {201, 422} <= statuses  # runs made as well as refused (else the property proves little)


@SETTINGS
@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode)
       | st.sampled_from([b"{", b"[]", b"null", b'{"config": 1e999}', b'{"config": NaN}', b"\xff\xfe", b'"\\ud800"',
                          b"[" * 16 + b"]" * 16, b'{"config": {"seed": ' + b"9" * 4000 + b"}}", b'{"config": {"data": {"width": -0}}}']))
def test_creating_a_run_from_any_body_bytes_is_never_a_server_error(lab, raw):
    answered(lab.post("/api/runs", content=raw, headers={"content-type": "application/json"}))


# Found by the properties above; web/forms.json_body parses with json.loads, which raises RecursionError for deep
# nesting and ValueError for integers beyond Python's 4300 digits (configio.loads refuses both as a ConfigError).
@pytest.mark.parametrize("raw", [b"[" * 5000, b"[" * 5000 + b"]" * 5000, b'{"config": {"seed": ' + b"9" * 5000 + b"}}"],
                         ids=["5000 open lists", "5000 nested lists", "5000-digit integer"])
def test_a_body_json_cannot_parse_safely_is_refused_not_a_server_error(lab, raw):
    answered(lab.post("/api/runs", content=raw, headers={"content-type": "application/json"}))


# A lone surrogate (\ud800) is valid JSON syntax but no Unicode text: the run is made, then its answer cannot be
# encoded, and from then on every GET /api/runs fails too. Hence a fresh lab for this test.
def test_a_lone_surrogate_in_a_config_string_is_refused_not_a_server_error(make_lab):
    client = make_lab()
    body = json.dumps({"config": TINY}).replace('"OV"', '"O\\ud800V"')
    answered(client.post("/api/runs", content=body.encode(), headers={"content-type": "application/json"}))
    answered(client.get("/api/runs"))


@SETTINGS
@given(damaged_pictures() | random_files | valid_pictures())
def test_uploading_any_bytes_is_never_a_server_error(lab, data):
    answered(lab.post("/api/uploads", content=data))


PREVIEW_KEYS = ["text", "width", "height", "font_size", "mode", "upload", "other"]
query_values = (st.text(max_size=12) | st.integers(-3, 300).map(str) | st.sampled_from([str(v) for v in EDGE_NUMBERS])
                | st.sampled_from(NAMES) | st.just("<the upload>"))


@SETTINGS
@given(st.dictionaries(st.sampled_from(PREVIEW_KEYS), query_values, max_size=5))
def test_previewing_a_target_with_any_query_is_never_a_server_error(lab, query):
    query = {k: lab.upload_id if v == "<the upload>" else v for k, v in query.items()}
    answered(lab.get("/api/target.png?" + urllib.parse.urlencode(query)))


RUN_ROUTES = [("POST", "/api/runs/{id}/start"), ("POST", "/api/runs/{id}/pause"), ("POST", "/api/runs/{id}/step"),
              ("POST", "/api/runs/{id}/reset"), ("GET", "/api/runs/{id}"), ("GET", "/api/runs/{id}/target.png"),
              ("GET", "/api/runs/{id}/frames/{x}"), ("GET", "/api/runs/{id}/download/{x}"), ("GET", "/api/runs")]
run_ids = st.just("seed") | st.text(min_size=1, max_size=30) | st.sampled_from([".", "..", ".uploads", "seed/", "SEED", "seed\x00"])
extras = (st.text(min_size=1, max_size=16) | st.integers(0, 10**14).map(lambda n: f"{n}.png")
          | st.sampled_from(["00000010.png", "10.png", "0.png", "video", "gif", "final", "config", "checkpoint", "..", "%2e%2e"]))


@settings(SETTINGS, max_examples=60)
@given(st.sampled_from(RUN_ROUTES), run_ids, extras)
def test_the_run_routes_with_any_run_id_are_never_a_server_error(lab, route, run_id, extra):
    method, template = route
    url = template.format(id=urllib.parse.quote(run_id, safe=""), x=urllib.parse.quote(extra, safe=""))
    r = lab.request(method, url)
    answered(r)
    if method == "POST" and template.endswith(("/start", "/step")) and r.status_code == 200:
        lab.post(url.rsplit("/", 1)[0] + "/pause")  # keep the one training slot free for the next example
