"""The notebook widget in real JupyterLab, driven by Playwright + headless Chromium: the cell runs in the notebook's
kernel, the widget appears under it, Start trains a run whose prediction picture changes on the page, and Pause
stops it (its run folder records the pause at its checkpoint). Skipped where jupyterlab or chromium is not installed."""

from __future__ import annotations

import json
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

from overfit.runs import RunFolder  # noqa: E402

TOKEN = "overfit-notebook-test"
RUN = {**TINY, "schedule.steps": 1_000_000, "schedule.eval_every": 50}
# The news pop-up would fetch from the internet and cover the notebook's corner.
PAGE_CONFIG = {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}


class Server:
    """`jupyter lab` on a free port, serving `root`, its log in root/server.log."""

    def __init__(self, root) -> None:
        (root / ".jupyter" / "labconfig").mkdir(parents=True)
        (root / ".jupyter" / "labconfig" / "page_config.json").write_text(json.dumps(PAGE_CONFIG))
        self.log_path = root / "server.log"
        self.port = free_port()
        # The notebook's kernel is python3, this interpreter's (jupyter runs sys.executable for a spec's "python").
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
                 f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}", "--allow-root"],
                stdout=log, stderr=subprocess.STDOUT, cwd=root,
                env={**os.environ, "JUPYTER_CONFIG_DIR": str(root / ".jupyter"), "JUPYTER_RUNTIME_DIR": str(root / ".runtime")})

    def wait_until_up(self) -> None:
        for _ in range(1200):  # until it answers (or it died)
            if self.process.poll() is not None:
                pytest.fail(f"jupyter lab did not start: {self.log()}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/api/status?token={TOKEN}", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"jupyter lab did not answer: {self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


@pytest.fixture
def jupyterlab(tmp_path):
    """A notebook whose one cell shows a Lab of a tiny run (runs in tmp_path/runs), served by JupyterLab."""
    code = f"from overfit.notebook import Lab\nlab = Lab('relu_1', overrides={RUN!r}, runs_dir='runs')\nlab"
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}  # no "select a kernel" dialog
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)], metadata={"kernelspec": kernel}),
                   tmp_path / "lab.ipynb")
    server = Server(tmp_path)
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


def picture(page) -> str:
    return page.eval_on_selector(".overfit-widget canvas.prediction-canvas", "c => c.toDataURL()")


def shown_step(page) -> int:
    return int(page.inner_text(".overfit-widget .stat-step").split("/")[0].replace(",", ""))


@pytest.mark.slow
def test_the_widget_trains_live_in_jupyterlab_and_pause_stops_it(jupyterlab, chromium, tmp_path):
    page = chromium.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))

    def fail(what: str) -> AssertionError:
        output = page.inner_text(".jp-Notebook")[-800:]
        return AssertionError(f"{what}; notebook: {output!r}; errors: {errors}; server log: {jupyterlab.log()}")

    try:
        page.goto(f"http://127.0.0.1:{jupyterlab.port}/lab/tree/lab.ipynb?token={TOKEN}")
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputArea-editor", timeout=60_000)
        try:  # its kernel started
            page.wait_for_function("() => /Idle/.test(document.querySelector('#jp-main-statusbar')?.textContent ?? '')",
                                   timeout=60_000)
        except Exception:
            raise fail("the notebook's kernel never became idle") from None
        page.click(".jp-Notebook .jp-Cell .jp-InputArea-editor")
        page.keyboard.press("Shift+Enter")  # run the cell: the widget appears under it
        try:
            page.wait_for_selector(".overfit-widget .panel .badge", timeout=60_000)
        except Exception:
            raise fail("no widget under the cell") from None
        assert page.inner_text(".overfit-widget .panel .badge") == "new"
        assert not page.is_enabled(".overfit-widget #btn-pause")

        page.click(".overfit-widget #btn-start")
        try:  # live messages from the kernel's sender thread: the prediction is drawn, the step counts up
            page.wait_for_function(
                "() => /live at step/.test(document.querySelector('.overfit-widget .pred-caption').textContent)", timeout=60_000)
        except Exception:
            raise fail("no live prediction after Start") from None
        first, step = picture(page), shown_step(page)
        page.wait_for_function(  # the prediction changes while it trains
            "(before) => document.querySelector('.overfit-widget canvas.prediction-canvas').toDataURL() !== before",
            arg=first, timeout=60_000)
        page.wait_for_function(
            "(before) => Number(document.querySelector('.overfit-widget .stat-step').textContent.split('/')[0]"
            ".replace(/,/g, '')) > before", arg=step, timeout=60_000)

        page.click(".overfit-widget #btn-pause")
        page.wait_for_function("() => document.querySelector('.overfit-widget .panel .badge').textContent === 'paused'",
                               timeout=60_000)
        paused = shown_step(page)
        (folder,) = (tmp_path / "runs").iterdir()
        run = RunFolder(folder)
        # Stopped: the run folder records the pause at the step its checkpoint resumes from. The page shows the
        # run's step as read back from the folder, its last evaluation, at most one evaluation interval before it.
        ending = run.ending()
        assert run.status() == "paused" and ending is not None and ending.how == "interrupted"
        assert run.checkpoint()["step"] == ending.step and 0 < paused <= ending.step < paused + RUN["schedule.eval_every"]
        assert page.is_enabled(".overfit-widget #btn-start") and not page.is_enabled(".overfit-widget #btn-pause")
        assert errors == []
    finally:
        page.close()
