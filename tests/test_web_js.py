"""Tests of the page's plain-data modules (`web/static/js/state.js`, `images.js`), run in Node where it is installed.

The page thins its curves as the server does (`web.live.Curve`), so both are fed the
same points here and must keep the same ones; and its picture cache must close every
bitmap it drops. Without `node` on the PATH these tests are skipped (the browser test
still loads the modules).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from overfit import metricinfo
from overfit.web import live

# The metric registry as /api/meta serves it (web/meta.py), for the page's curves.
METRICS = json.dumps(metricinfo.served())
NODE = shutil.which("node")
JS = Path(__file__).resolve().parents[1] / "src" / "overfit" / "web" / "static" / "js"

pytestmark = pytest.mark.skipif(NODE is None, reason="needs Node.js to run the page's modules")


def run_js(script: str) -> object:
    """Run an ES module `script` (with JS = the modules' folder URL) and return what it prints as JSON."""
    prelude = f"const JS = {json.dumps(JS.as_uri())};\n"
    out = subprocess.run([NODE, "--input-type=module", "-e", prelude + script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_the_page_thins_a_curve_exactly_as_the_server_does(monkeypatch):
    monkeypatch.setattr(live, "MAX_CURVE_POINTS", 100)
    points = [[step, 1.0 / step] for step in range(1, 1001)]
    server = live.Curve()
    for step, value in points:
        server.add(step, value)
    page = run_js(f"""
        const {{ newCurve, addPoints }} = await import(JS + "/state.js");
        const curve = newCurve();
        const points = {json.dumps(points)};
        for (let i = 0; i < points.length; i += 7) addPoints(curve, points.slice(i, i + 7), 100);  // ticks of 7 points
        console.log(JSON.stringify({{ points: curve.points, stride: curve.stride }}));
    """)
    assert len(server.points) <= 100 and server.stride == 16
    assert page == {"points": [list(p) for p in server.points], "stride": server.stride}


def test_points_already_in_a_snapshot_count_once():
    page = run_js(f"""
        const {{ applyMessage, createState }} = await import(JS + "/state.js");
        const state = createState();
        state.meta = {{ limits: {{ curve_points: 4000 }}, metrics: {METRICS} }};
        const run = {{ step: 30, curves: {{ loss: [[10, 1], [20, 0.5], [30, 0.4]], dense_acc: [[0, 0.5]] }},
                      curve_strides: {{ loss: 1, dense_acc: 1 }}, frames: [0] }};
        applyMessage(state, "r", {{ type: "snapshot", run }});
        applyMessage(state, "r", {{ type: "tick", step: 40, loss: 0.3, steps_per_s: 1, points: [[30, 0.4], [40, 0.3]] }});
        const record = {{ step: 100, dense_acc: 0.9, dense_ssim: 0.5, train_seconds: 3, dense_new: 1 }};
        applyMessage(state, "r", {{ type: "eval", metric: "dense_acc", record, frame: 100 }});
        const view = state.runs.r;
        console.log(JSON.stringify({{ loss: view.curves.loss.points, metric: view.curves.dense_acc.points, frames: view.frames,
          curves: Object.keys(view.curves).sort() }}));
    """)
    assert page == {"loss": [[10, 1], [20, 0.5], [30, 0.4], [40, 0.3]], "metric": [[0, 0.5], [100, 0.9]], "frames": [0, 100],
                    # every metric the record holds that the registry knows gets a curve; other keys none
                    "curves": ["dense_acc", "dense_ssim", "inside", "loss"]}


def test_the_picture_cache_drops_the_least_recently_used_and_closes_them():
    page = run_js("""
        const { ImageCache } = await import(JS + "/images.js");
        const closed = [];
        let loads = 0;
        const cache = new ImageCache(async (url) => {
          loads += 1;
          if (url === "bad") throw new Error("no");
          return { url, close() { closed.push(url); } };
        }, 3);
        for (const url of ["a", "b", "c"]) await cache.get(url);
        await cache.get("a");                      // used again: now the newest
        await cache.get("d");                      // over the limit: drops b, the least recently used
        await cache.get("d", true);                // fresh: the old d is dropped and closed, a new one loaded
        await cache.get("bad").catch(() => {});    // a failed load is not kept (it took c's place while it loaded)
        await new Promise((r) => setTimeout(r, 10));
        console.log(JSON.stringify({ closed, kept: [...cache.entries.keys()], loads }));
    """)
    assert page == {"closed": ["b", "d", "c"], "kept": ["a", "d"], "loads": 6}


def test_evaluations_add_to_the_inside_curve_as_the_server_keeps_it():
    from overfit.web.live import inside

    record = {"step": 100, "dense_acc": 0.9, "bands": [0.1, None, float("nan")] + [0.5] * 5,
              "layers": [{"layer": "1", "units": 4, "dead": 0.25, "saturated": None, "pre_mean": 0.1, "pre_std": 1.5,
                          "weight_norm": 2.0, "grad_norm": 0.01, "update_ratio": 1e-4},
                         {"layer": "output", "units": 1, "weight_norm": 1.0, "grad_norm": None, "update_ratio": 2e-4}]}
    page = run_js(f"""
        const {{ applyMessage, createState }} = await import(JS + "/state.js");
        const state = createState();
        state.meta = {{ limits: {{ curve_points: 4000 }}, metrics: {METRICS} }};
        const run = {{ step: 0, curves: {{ loss: [], dense_acc: [] }}, curve_strides: {{ loss: 1, dense_acc: 1 }}, frames: [0],
                      inside: {{ points: [[0, {{ layers: {{}}, bands: [] }}]], stride: 1, keys: ["dead", "pre_std", "grad_norm", "update_ratio"] }} }};
        applyMessage(state, "r", {{ type: "snapshot", run }});
        const changed = applyMessage(state, "r", {{ type: "eval", metric: "dense_acc", record: {json.dumps(record).replace("NaN", "null")}, frame: 100 }});
        console.log(JSON.stringify({{ points: state.runs.r.curves.inside.points, network: changed.network }}));
    """)
    assert page["network"] is True
    assert page["points"] == [[0, {"layers": {}, "bands": []}], [100, inside(record)]]


def test_held_out_evaluations_go_to_fit_and_test_curves_thinned_as_the_server_thins_them(monkeypatch):
    from overfit.modes import MODES

    monkeypatch.setattr(live, "MAX_CURVE_POINTS", 20)
    records = [{"step": 10 * i, "dense_acc": i / 200, "fit_acc": i / 100, "test_acc": i / 400} for i in range(1, 101)]
    server = live.curves_from(records, MODES["binary"])
    page = run_js(f"""
        const {{ applyMessage, createState, heldOut }} = await import(JS + "/state.js");
        const state = createState();
        state.meta = {{ limits: {{ curve_points: 20 }}, metrics: {METRICS} }};
        // A snapshot without fit and test curves yet: they start with the first evaluation that has them.
        const run = {{ step: 0, held_out: true, curves: {{ loss: [], dense_acc: [] }}, curve_strides: {{ loss: 1, dense_acc: 1 }}, frames: [] }};
        applyMessage(state, "r", {{ type: "snapshot", run }});
        for (const record of {json.dumps(records)}) {{
          applyMessage(state, "r", {{ type: "eval", metric: "dense_acc", fit: "fit_acc", test: "test_acc", record, frame: null }});
        }}
        const view = state.runs.r;
        // A run without held-out pixels: its evaluations name no fit or test key and add no such point.
        applyMessage(state, "plain", {{ type: "snapshot", run: {{ step: 0, held_out: false, test_value: null, frames: [],
          curves: {{ loss: [], dense_acc: [] }}, curve_strides: {{ loss: 1, dense_acc: 1 }} }} }});
        applyMessage(state, "plain", {{ type: "eval", metric: "dense_acc", record: {{ step: 10, dense_acc: 0.5 }}, frame: 10 }});
        const plain = state.runs.plain;
        const curve = (c) => ({{ points: c.points, stride: c.stride }});
        console.log(JSON.stringify({{ fit_acc: curve(view.curves.fit_acc), test_acc: curve(view.curves.test_acc),
          dense_acc: curve(view.curves.dense_acc),
          values: [view.summary.metric_value, view.summary.fit_value, view.summary.test_value], held: [heldOut(view), heldOut(plain)],
          plain: [plain.curves.dense_acc.points, plain.curves.fit_acc ?? null, plain.curves.test_acc ?? null, plain.summary.test_value] }}));
    """)
    for name in ("dense_acc", "fit_acc", "test_acc"):
        assert page[name] == {"points": [list(p) for p in server[name].points], "stride": server[name].stride}, name
    assert server["fit_acc"].stride == 8 and len(server["fit_acc"].points) <= 20
    assert page["values"] == [0.5, 1.0, 0.25]  # the last evaluation's, as the summary's metric_value, fit_value, test_value
    assert page["held"] == [True, False]
    assert page["plain"] == [[[10, 0.5]], None, None, None]  # no fit or test curve at all


def test_held_out_pixels_are_part_of_the_target_its_link_and_every_runs_config():
    data = {"text": "OVERFIT", "image": None, "width": 64, "height": 32, "font_size": None, "mode": "binary", "holdout": "none"}
    meta = {"defaults": {"data": data}, "default_preset": "relu_1", "modes": {"binary": {}},
            "presets": {"relu_1": {"config": {"preset": "relu_1", "data": data, "model": {"hidden": [4]}}}},
            "sections": [{"key": "data", "target": True}, {"key": "model", "target": False}], "fields": [],
            "patterns": {"run": "^[A-Za-z0-9][A-Za-z0-9._-]*$", "upload": "^[0-9a-f]{64}$"}}
    page = run_js(f"""
        const {{ createState, fromHash, openRun, setMeta, setTarget, slotConfig, toHash }} = await import(JS + "/state.js");
        const meta = {json.dumps(meta)};
        const state = createState();
        setMeta(state, meta);
        const before = [toHash(state), slotConfig(state, state.slots[0]).data.holdout];
        state.slots[0].runId = "old";
        setTarget(state, {{ holdout: "checkerboard" }});  // another split: the slot's run no longer fits it
        const hash = toHash(state);
        const other = createState();  // a pasted link
        setMeta(other, meta);
        fromHash(other, hash);
        const restored = other.target.holdout;
        openRun(other, 0, {{ id: "r", upload: null, config: {{ ...meta.presets.relu_1.config, data: {{ ...meta.defaults.data, holdout: "0.25" }} }} }});
        console.log(JSON.stringify({{ before, runId: state.slots[0].runId, hash, cfg: slotConfig(state, state.slots[0]).data.holdout, restored,
          opened: [other.target.holdout, slotConfig(other, other.slots[0]).data.holdout, toHash(other).includes("holdout=0.25")] }}));
    """)
    assert page["before"] == ["#target=builtin&run=relu_1", "none"]  # the default is left out of the link
    assert page["runId"] is None and "holdout=checkerboard" in page["hash"] and page["cfg"] == "checkerboard"
    assert page["restored"] == "checkerboard"
    assert page["opened"] == ["0.25", "0.25", True]
