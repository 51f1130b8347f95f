"""The lab's network view: GET /api/runs/{id}/network, /network/unit and /batch, and the inside-the-network curve."""

from __future__ import annotations

import base64

import numpy as np
import pytest
import torch
from helpers import NETWORK
from web_client import TINY, client_of

from overfit.config import RunConfig
from overfit.netview import network_view
from overfit.runs import RunFolder
from overfit.session import Session
from overfit.web import create_app
from overfit.web.network import quantize

RAW = NETWORK


@pytest.fixture
def runs(network_run):
    """A runs folder with one trained run ("net": layers of 16 and 8 relu units, weights at steps 0, 10, 20)."""
    return network_run.parent


@pytest.fixture
def client(runs):
    with client_of(create_app(runs, max_runs=1)) as c:
        yield c


def tiles(layer: dict, height: int, width: int) -> np.ndarray:
    return np.frombuffer(base64.b64decode(layer["tiles"]), np.uint8).reshape(layer["units"], height, width)


def test_the_view_has_one_tile_per_unit_of_each_hidden_layer(client):
    r = client.get("/api/runs/net/network")
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["step"] == 20 and view["steps"] == [0, 10, 20]
    assert [layer["units"] for layer in view["layers"]] == [16, 8]
    assert [layer["activation"] for layer in view["layers"]] == ["relu", "relu"]
    assert (view["height"], view["width"]) == (16, 32)  # the picture is smaller than a tile's long side: its own size
    for layer in view["layers"]:
        assert tiles(layer, view["height"], view["width"]).shape[0] == len(layer["dead"]) == len(layer["saturated"]) == layer["units"]


def test_tiles_are_the_units_pictures_quantized_on_the_layers_scale(client, runs):
    view = client.get("/api/runs/net/network?step=10").json()
    reference = network_view(runs / "net", 10, long_side=32)
    for i, layer in enumerate(view["layers"]):
        shown = tiles(layer, view["height"], view["width"])
        values = (shown.astype(np.float32) / 127.5 - 1) * layer["scale"]
        maps = reference.maps[i]
        inside = np.abs(maps) <= layer["scale"]  # values past the scale are clipped, as the picture's colours are
        assert np.abs(values - maps)[inside].max() <= layer["scale"] / 127.5
        assert layer["dead"] == [bool(d) for d in reference.flags(i)[0]]
    assert any(view["layers"][0]["dead"])  # raw coordinates: some first-layer units are 0 on the whole picture


def test_the_step_shown_is_the_last_stored_at_or_before_the_one_asked_for(client):
    assert client.get("/api/runs/net/network?step=15").json()["step"] == 10
    assert client.get("/api/runs/net/network?step=10").json()["step"] == 10
    assert client.get("/api/runs/net/network?step=0").json()["step"] == 0
    assert client.get("/api/runs/net/network?step=99999").json()["step"] == 20
    first, last = (client.get(f"/api/runs/net/network?step={s}").json() for s in (0, 20))
    assert first["layers"][0]["tiles"] != last["layers"][0]["tiles"]  # training changed the units


def test_refusals_are_clear_json(client):
    r = client.get("/api/runs/nothing/network")
    assert r.status_code == 404 and "nothing" in r.json()["error"]
    r = client.get("/api/runs/net/network?step=-1")
    assert r.status_code == 422 and r.json()["field"] == "step"
    r = client.get("/api/runs/net/network?size=1000")
    assert r.status_code == 422 and r.json()["field"] == "size"
    # A run that never trained has no weights yet.
    created = client.post("/api/runs", json={"config": TINY, "name": "fresh"})
    assert created.status_code == 201, created.text
    r = client.get("/api/runs/fresh/network")
    assert r.status_code == 404 and r.json() == {"error": "run fresh has no stored weights yet (they are kept at evaluations; "
                                                          "models above a million parameters keep none)", "field": "step"}
    r = client.get("/api/runs/fresh/network/unit?layer=1&unit=0")
    assert r.status_code == 404 and r.json()["field"] == "step"


def test_a_step_before_the_first_stored_weights_is_a_404(client, runs):
    import shutil

    shutil.copytree(runs / "net", runs / "late")
    (runs / "late" / "weights" / "00000000.safetensors").unlink()
    r = client.get("/api/runs/late/network?step=5")
    assert r.status_code == 404 and r.json()["error"] == "run late has no stored weights at or before step 5 (the first is at step 10)"
    assert client.get("/api/runs/late/network?step=12").json()["step"] == 10


def test_a_unit_comes_with_its_incoming_weights(client, runs):
    from overfit.diagnostics import layer_weights
    from overfit.models import model_for
    from overfit.runs import RunFolder

    first = client.get("/api/runs/net/network/unit?layer=1&unit=3&step=12").json()
    second = client.get("/api/runs/net/network/unit?layer=2&unit=7").json()
    assert first["step"] == 10 and second["step"] == 20
    folder = RunFolder(runs / "net")
    model = model_for(folder.config(), 16, 32)
    model.load_state_dict(folder.read_weights(20))
    assert len(second["weights"]) == 16  # layer 2's fan-in: the 16 units of layer 1
    assert np.allclose(second["weights"], layer_weights(model, 2)[7], atol=1e-6)
    assert len(first["weights"]) == layer_weights(model, 1).shape[1]
    assert first["inputs"] == "encoded inputs" and second["inputs"] == "units of layer 1"
    picture = base64.b64decode(first["tile"])
    assert len(picture) == first["height"] * first["width"] and (first["height"], first["width"]) == (16, 32)
    for query, field in (("layer=3&unit=0", "layer"), ("layer=0&unit=0", "layer"), ("layer=2&unit=8", "unit"), ("layer=1&unit=-1", "unit")):
        r = client.get(f"/api/runs/net/network/unit?{query}")
        assert r.status_code == 422 and r.json()["field"] == field, (query, r.text)


def test_quantize_maps_zero_to_the_middle_and_the_scale_to_the_ends():
    data, scale = quantize(np.array([[[-2.0, 0.0, 2.0, 0.5]]], np.float32))
    assert scale == pytest.approx(2.0, rel=0.01)
    assert list(data)[:3] == [0, 128, 255]
    assert quantize(np.zeros((2, 1, 1), np.float32)) == (bytes([128, 128]), 1.0)  # all zero (a dead layer): a scale of 1


def test_the_run_detail_holds_the_layer_diagnostics_and_band_errors_of_each_evaluation(client):
    detail = client.get("/api/runs/net").json()
    inside = detail["inside"]["points"]
    assert [step for step, _ in inside] == [0, 10, 20] and detail["inside"]["stride"] == 1
    assert detail["inside"]["keys"] == ["dead", "pre_std", "grad_norm", "update_ratio"]
    step, point = inside[-1]
    assert list(point["layers"]) == ["1", "2", "output"]
    assert point["layers"]["output"][0] is None and 0 <= point["layers"]["1"][0] <= 1  # the output layer has no dead units
    assert len(point["bands"]) == 8
    assert inside[0][1]["layers"]["1"][2] is None  # no gradient before the first step


def test_a_training_batch_is_the_runs_preview_batch_cut_to_the_points_asked_for(client, runs):
    from overfit.training import Trainer

    r = client.get("/api/runs/net/batch?n=50")
    assert r.status_code == 200, r.text
    b = r.json()
    yx = np.array(b["yx"])
    assert yx.shape == (50, 2) and len(b["labels"]) == 50 and set(b["labels"]) <= {0, 1}
    assert (yx >= 0).all() and (yx[:, 0] <= 15).all() and (yx[:, 1] <= 31).all()
    # The batch samples.png shows: the trainer's preview batch, its first 50 points.
    folder = RunFolder(runs / "net")
    want_yx, want_labels = Trainer(folder.config(), folder.target()).preview_batch()
    assert np.allclose(yx, want_yx[:50], atol=0.006) and b["labels"] == want_labels[:50].tolist()
    # More points than a batch holds: the whole batch (64 points, optim.batch_size).
    assert len(client.get("/api/runs/net/batch?n=500").json()["yx"]) == 64
    assert client.get("/api/runs/net/batch?n=0").status_code == 422


def test_a_checkerboard_runs_batch_never_lands_on_a_held_out_pixel_and_matches_samples_png(tmp_path):
    from overfit.coords import pixel_index
    from overfit.sampling import holdout_split
    from overfit.training import Trainer, derived_seeds

    cfg = RunConfig().with_overrides({**RAW, "data.holdout": "checkerboard", "optim.batch_size": "4096", "schedule.steps": "2",
                                          "schedule.eval_every": "2"})
    with Session.start(cfg, tmp_path, "board") as session:
        session.run()
    with client_of(create_app(tmp_path, max_runs=1)) as c:
        b = c.get("/api/runs/board/batch?n=4096").json()
    yx, labels = np.array(b["yx"]), np.array(b["labels"])
    assert yx.shape == (4096, 2)
    folder = RunFolder(tmp_path / "board")
    # Held out: the pixels in an odd row and an odd column (rows counted from the top, row = 15 - y). No point
    # lies inside one (0.005 short of the cell's edge: the coordinates are rounded to 0.01).
    row, col = 15 - yx[:, 0], yx[:, 1]
    near_row, near_col = 2 * np.round((row - 1) / 2) + 1, 2 * np.round((col - 1) / 2) + 1
    assert not ((np.abs(row - near_row) < 0.495) & (np.abs(col - near_col) < 0.495)).any()
    # The lab's batch is the trainer's preview batch: the one samples.png was drawn from.
    want_yx, want_labels = Trainer(folder.config(), folder.target()).preview_batch()
    assert np.allclose(yx, want_yx, atol=0.006) and np.array_equal(labels, want_labels)
    # The copy this replaces (the whole picture, seeded by cfg.seed) put about a quarter of its points on held-out pixels.
    from overfit.modes import get_mode

    mode = get_mode("binary")
    old_yx, _ = mode.sampler(mode.target_tensor(folder.target(), "cpu")).sample(4096, cfg.seed, 0)
    split = holdout_split("checkerboard", 16, 32, derived_seeds(cfg.seed)["holdout"])
    old_rows, old_cols = pixel_index(old_yx, 16)
    assert float(split.test[old_rows, old_cols].float().mean()) > 0.15
