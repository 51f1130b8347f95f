"""The notebook widget in real JupyterLab, driven by Playwright + headless Chromium: Start trains a run
whose prediction picture changes on the page; Pause stops it. Skipped where jupyterlab is not installed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from helpers import TINY, free_port

pytest.importorskip("anywidget")
pytest.importorskip("jupyterlab", reason="the widget's browser test needs jupyterlab (pip install jupyterlab)")
nbformat = pytest.importorskip("nbformat")

TOKEN = "overfit-notebook-test"
RUN = {**TINY, "schedule.steps": 1_000_000, "schedule.eval_every": 50}


@pytest.fixture
def jupyterlab(tmp_path):
    code = f"from overfit.notebook import Lab\nlab = Lab('relu_1', overrides={RUN!r}, runs_dir='runs')\nlab"
    kernel = {"name": "python3", "display_name": "Python 3", "language": "python"}  # no "select a kernel" dialog
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)], metadata={"kernelspec": kernel}),
                   tmp_path / "lab.ipynb")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                               f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={tmp_path}", "--allow-root"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
                              env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(tmp_path / ".runtime")})
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):  # until it answers (or it died)
            if server.poll() is not None:
                pytest.fail("jupyter lab did not start")
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        yield f"{base}/lab/tree/lab.ipynb?token={TOKEN}"
    finally:
        server.terminate()
        server.wait(30)


def picture(page) -> str:
    return page.eval_on_selector(".overfit-widget canvas.prediction-canvas", "c => c.toDataURL()")


def step(page) -> str:
    return page.inner_text(".overfit-widget .stat-step")


@pytest.mark.slow
@pytest.mark.skip(reason="unfinished: in headless JupyterLab 4.6 the cell is not executed (the kernel's Idle status never "
                         "shows in the status bar, and Shift+Enter leaves the cell unrun); the widget's front end is untested in a browser")
def test_the_widget_trains_live_in_jupyterlab_and_pause_stops_it(jupyterlab, chromium):
    page = chromium.new_page(viewport={"width": 1300, "height": 1000})
    try:
        logs: list[str] = []
        page.on("console", lambda m: logs.append(m.text))
        page.goto(jupyterlab)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_function("() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent ?? '')",
                               timeout=60_000)  # its kernel started
        page.click(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")  # run the cell: the widget appears under it
        try:
            page.wait_for_selector(".overfit-widget .panel .badge", timeout=60_000)
        except Exception:
            raise AssertionError(f"no widget; output: {page.inner_text('.jp-Notebook')[-800:]!r}; console: {logs[-10:]}") from None
        assert page.inner_text(".overfit-widget .panel .badge") == "new"
        page.click(".overfit-widget #btn-start")
        page.wait_for_function("() => /live at step/.test(document.querySelector('.overfit-widget .pred-caption').textContent)",
                               timeout=60_000)
        first = picture(page)
        page.wait_for_function("(before) => document.querySelector('.overfit-widget canvas.prediction-canvas').toDataURL() !== before",
                               arg=first, timeout=60_000)  # the prediction changes while it trains
        page.click(".overfit-widget #btn-pause")
        page.wait_for_function("() => document.querySelector('.overfit-widget .panel .badge').textContent === 'paused'", timeout=60_000)
        paused = step(page)
        page.wait_for_timeout(1500)
        assert step(page) == paused and page.inner_text(".overfit-widget .panel .badge") == "paused"
        assert int(paused.split("/")[0].replace(",", "")) > 0
    finally:
        page.close()
