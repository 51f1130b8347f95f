"""End-to-end test of the lab in a real headless Chromium (Playwright).

The lab server runs in a background thread on a free port with a temporary runs
folder; the browser picks a preset and a tiny text target, presses Start, waits for
the accuracy on the page to rise and the prediction canvas to change, scrubs back
to the first evaluation and saves a screenshot (lab.png in the test's temporary folder).
The browser is the session's one Chromium (`chromium` in tests/conftest.py), each test in a
fresh context; `.ci/run` installs Debian's chromium, and without /usr/bin/chromium the tests
are skipped.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from helpers import CHROMIUM, free_port

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's chromium at {CHROMIUM} (.ci/run installs it)")


@pytest.fixture
def server(tmp_path):
    import uvicorn

    from overfit.web import create_app

    port = free_port()
    app = create_app(tmp_path / "runs", max_runs=2)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a guard against a hang: the loop ends as soon as the server is up
    while not srv.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the lab server did not start"
        time.sleep(0.05)
    # The address `overfit lab` prints: the page keeps the token in its cookie and drops it from the address.
    yield f"http://127.0.0.1:{port}/?token={app.state.token}"
    srv.should_exit = True  # its shutdown pauses the run at a checkpoint
    thread.join(30)


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 800})  # its own storage: nothing left from another test
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    yield page
    context.close()
    assert not errors, errors


# A coarse fingerprint of the prediction canvas's pixels (evaluated in the page).
SIGNATURE = """() => {
    const c = document.querySelector('.panel .prediction-canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    const out = [];
    for (let i = 0; i < d.length; i += Math.max(4, 4 * Math.floor(d.length / 4 / 256))) out.push(d[i], d[i + 1], d[i + 2]);
    return out.join(',');
}"""


def shown_accuracy(page) -> float | None:
    value = page.get_attribute(".panel .stat-metric", "data-value")
    return float(value) if value else None


def test_the_lab_trains_a_run_live_in_a_real_browser(server, page, tmp_path):
    page.goto(server)
    page.wait_for_selector("body.ready")
    page.select_option("#preset-select", "cos_3")
    # Fields that do not apply to the current choices are hidden: w0 only matters for siren and gauss.
    w0 = "#slot-form .field[data-key='model.w0']"
    assert page.is_hidden(w0)
    page.select_option("select[name='model.activation']", "siren")
    assert page.is_visible(w0)
    page.select_option("select[name='model.activation']", "cos")
    assert page.is_hidden(w0)
    page.click("#target-tabs button[data-kind=text]")
    page.fill("#target-text", "OV")
    page.fill("#target-width", "64")
    page.fill("#target-height", "32")
    for name, value in (("schedule.steps", "20000"), ("schedule.eval_every", "50"), ("optim.lr", "0.0003")):
        page.fill(f"input[name='{name}']", value)
        page.dispatch_event(f"input[name='{name}']", "change")
    assert "cos_3" in page.evaluate("location.hash") and "optim.lr%3D0.0003" in page.evaluate("location.hash")

    page.click("#btn-start")
    page.wait_for_function("document.querySelector('.panel .badge').textContent === 'running'")
    page.wait_for_function("document.querySelector('.panel .stat-metric').dataset.value !== ''")
    first = shown_accuracy(page)
    page.wait_for_function("document.querySelector('.panel .pred-caption').textContent.includes('live')")
    assert page.inner_text(".panel .stat-metric-name") == "accuracy"  # the mode's headline, as the server names it
    page.evaluate(f"window.firstPicture = ({SIGNATURE})()")

    # Learning shows on the page: accuracy up, prediction redrawn.
    page.wait_for_function(f"Number(document.querySelector('.panel .stat-metric').dataset.value) > {first} + 0.1", timeout=60_000)
    page.wait_for_function(f"({SIGNATURE})() !== window.firstPicture")
    page.wait_for_function("document.querySelector('.panel .scrub').max >= 2")

    # Scrub back to the first evaluation: the untrained network at step 0.
    page.locator(".panel .scrub").fill("0")
    page.wait_for_function("document.querySelector('.panel .pred-caption').textContent.endsWith('step 0')")
    assert "evaluation 1 of" in page.inner_text(".panel .scrub-label")

    # The metric chart draws any metric the run records, labelled by the metric registry: choose the ink IoU.
    options = page.eval_on_selector_all("#metric-choice option", "els => els.map(e => e.value)")
    assert options[0] == "dense_acc" and {"dense_iou", "dense_loss", "batch_acc", "train_loss"} <= set(options)
    page.select_option("#metric-choice", "dense_iou")
    page.wait_for_function("document.querySelector('#metric-caption-text').textContent === 'dense ink IoU'")

    page.locator(".panel .scrub").fill(page.get_attribute(".panel .scrub", "max"))  # back to the newest
    page.click("#btn-pause")
    page.wait_for_function("document.querySelector('.panel .badge').textContent === 'paused'")
    page.evaluate("document.querySelector('.sidebar').scrollTop = 0")
    screenshot = tmp_path / "lab.png"
    page.screenshot(path=str(screenshot))
    assert screenshot.stat().st_size > 10_000


def test_the_page_asks_for_its_token_and_keeps_it_once_given(server, page):
    bare = server.split("?")[0]
    page.goto(bare)
    assert "access token" in page.inner_text("body")  # without the printed address: refused, on loopback too
    page.goto(server)
    page.wait_for_selector("body.ready")
    assert "token" not in page.url  # kept in the cookie, out of the address bar and the history
    page.reload()
    page.wait_for_selector("body.ready")  # the page, its API requests and its WebSocket all pass with the cookie


def test_the_page_is_built_from_the_servers_facts(server, page):
    page.goto(server)
    page.wait_for_selector("body.ready")
    meta = page.evaluate("fetch('/api/meta').then((r) => r.json())")
    # Sections and their titles, the modes and the built-in target all come from /api/meta.
    titles = page.eval_on_selector_all("#slot-form details.section > summary", "els => els.map(e => e.textContent)")
    assert titles == [s["title"] for s in meta["sections"] if not s["target"]]
    assert page.eval_on_selector_all("#target-mode option", "els => els.map(e => e.value)") == list(meta["modes"])
    assert page.inner_text("#target-tabs button[data-kind=builtin]") == meta["defaults"]["data"]["text"]
    assert page.inner_text("#metric-caption") == f"dense {meta['modes']['binary']['label']} (%)"
    page.select_option("#target-mode", "gray")
    page.wait_for_function("document.querySelector('#metric-caption').textContent.includes('PSNR')")
    assert "shown as they are" in page.inner_text("#legend")
    # The page's own copy of a curve stays as light as the server's.
    kept = page.evaluate("""async (max) => {
        const { newCurve, addPoints } = await import('/static/js/state.js');
        const curve = newCurve();
        for (let step = 1; step <= 10 * max; step++) addPoints(curve, [[step, 1 / step]], max);
        return curve.points.length;
    }""", meta["limits"]["curve_points"])
    assert meta["limits"]["curve_points"] // 2 <= kept <= meta["limits"]["curve_points"]

    # Held-out pixels: set in the target card, the server's suggestions offered, any value typed; a bad one is refused at Start.
    suggestions = next(f["suggestions"] for f in meta["fields"] if f["key"] == "data.holdout")
    assert page.eval_on_selector_all("#target-holdout datalist option", "els => els.map(e => e.value)") == suggestions
    page.fill("#target-holdout input", "half")
    page.dispatch_event("#target-holdout input", "change")
    assert "holdout=half" in page.evaluate("location.hash")
    page.click("#btn-start")
    page.wait_for_selector("#target-holdout.invalid .field-error")
    assert "checkerboard" in page.inner_text("#target-holdout .field-error")


def test_a_failed_run_shows_why_in_the_list_after_a_reload(server, page, tmp_path):
    import json

    page.goto(server)
    page.wait_for_selector("body.ready")
    created = page.evaluate("""() => fetch('/api/runs', {method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({name: 'broken', config: {data: {text: 'OV', width: 64, height: 32, holdout: 'checkerboard'}, model: {hidden: [16, 16]}}})})
        .then((r) => r.status)""")
    assert created == 201
    reason = "training diverged: loss is nan at step 0"
    ending = {"how": "diverged", "step": 0, "reason": reason}  # as a run that diverged leaves it
    (tmp_path / "runs" / "broken" / "ending.json").write_text(json.dumps(ending))
    page.reload()
    page.wait_for_selector("body.ready")
    page.wait_for_selector("#existing .run-error")
    assert page.inner_text("#existing .badge") == "failed"
    assert page.inner_text("#existing .run-error") == reason
    # Opened, a run with held-out pixels (this one holds out a checkerboard) puts its split in the target card and
    # its held-out headline in its panel, and the metric chart's caption says which curve is which.
    assert page.is_hidden(".panel .stat-held-out")
    page.click("#existing .run-name")
    page.wait_for_function("document.querySelector('#metric-caption').textContent.includes('dashed: held out')")
    assert page.input_value("#target-holdout input") == "checkerboard"
    assert page.is_visible(".panel .stat-held-out")


# A fingerprint of every network tile's pixels, and the tiles per layer (evaluated in the page).
TILES = """() => [...document.querySelectorAll('#network-layers .net-tile')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let s = 0;
    for (let i = 0; i < d.length; i += 4) s = (s * 31 + d[i] * 7 + d[i + 2]) % 1000003;
    return s;
}).join(',')"""
TILE_COUNTS = """() => [...document.querySelectorAll('#network-layers .net-layer')].map((l) => l.querySelectorAll('.net-tile').length)"""
NETWORK_NOTE = "document.querySelector('#network-note').textContent"
NETWORK_STEP = "document.querySelector('#network-layers').dataset.step"


def test_the_network_view_follows_training_and_the_slider(server, page, tmp_path):
    page.goto(server)
    page.wait_for_selector("body.ready")
    page.click("#target-tabs button[data-kind=text]")
    page.fill("#target-text", "OV")
    page.fill("#target-width", "64")
    page.fill("#target-height", "32")
    for name, value in (("model.hidden", "24,12,8"), ("schedule.steps", "20000"), ("schedule.eval_every", "100")):
        page.fill(f"input[name='{name}']", value)
        page.dispatch_event(f"input[name='{name}']", "change")
    page.click("#network-card summary")
    page.click("#btn-start")
    page.wait_for_function("document.querySelector('.panel .badge').textContent === 'running'")
    page.wait_for_function(f"({TILE_COUNTS})().length === 3")
    assert page.evaluate(TILE_COUNTS) == [24, 12, 8]
    first, first_note = page.evaluate(TILES), page.evaluate(NETWORK_STEP)
    # The view updates at each evaluation while it is open and following the run.
    page.wait_for_function(f"{NETWORK_STEP} !== {first_note!r}", timeout=60_000)
    page.wait_for_function(f"({TILES})() !== {first!r}", timeout=60_000)
    page.wait_for_function("document.querySelector('.panel .scrub').max >= 3", timeout=60_000)
    page.click("#btn-pause")
    page.wait_for_function("document.querySelector('.panel .badge').textContent === 'paused'")
    page.wait_for_function(f"!{NETWORK_NOTE}.includes('loading')")
    latest = page.evaluate(TILES)

    # Scrubbing back shows the network at that evaluation: step 0, the untrained units.
    page.locator(".panel .scrub").fill("0")
    page.wait_for_function(f"{NETWORK_STEP} === '0'")
    page.wait_for_function(f"({TILES})() !== {latest!r}")
    assert page.evaluate(TILE_COUNTS) == [24, 12, 8]
    # 201 evaluations keep every third one's weights (at most 100 a run): step 200 shows step 0's, step 300 its own.
    page.locator(".panel .scrub").fill("2")
    page.wait_for_function(f"{NETWORK_NOTE}.includes('at or before step 200')")
    assert page.evaluate(NETWORK_STEP) == "0"
    page.locator(".panel .scrub").fill("3")
    page.wait_for_function(f"{NETWORK_STEP} === '300'")

    # A tile opens large with its incoming weights: layer 2's units each have 24.
    page.click("#network-layers .net-layer[data-layer='2'] .net-tile >> nth=5")
    page.wait_for_selector("#network-unit .net-weights")
    page.wait_for_function("document.querySelector('#network-unit').textContent.includes('step 300')")
    assert "24 incoming weights from the units of layer 1" in page.inner_text("#network-unit")
    assert "layer 2, unit 5" in page.inner_text("#network-unit")

    # The per-layer charts and the band heatmap have data; the training batch shows over the prediction.
    assert page.evaluate("document.querySelector('#inside-legend').textContent") == "layer 1layer 2layer 3output"
    page.check("#batch-toggle")
    page.wait_for_function("!document.querySelector('.panel .batch-canvas').hidden")
    page.set_viewport_size({"width": 1280, "height": 1250})
    page.evaluate("document.querySelector('.workspace').scrollTop = document.querySelector('.workspace').scrollHeight")
    # The screenshot in docs/ is refreshed only on request (OVERFIT_UPDATE_DOCS=1): running the tests changes no file of the checkout.
    docs = Path(__file__).resolve().parents[1] / "docs" / "network-view.png"
    shot = docs if os.environ.get("OVERFIT_UPDATE_DOCS") == "1" else tmp_path / "network-view.png"
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
