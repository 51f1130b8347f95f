"""overfit.notebook: the widget's Python side (traits while a tiny run trains in the background, pause,
an existing folder's history), one-line errors, show(), the linked front end, and a notebook run by nbclient."""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import time

import pytest

from helpers import TINY

pytest.importorskip("anywidget")

from overfit.notebook import Lab, MissingExtra, NotebookError, show  # noqa: E402
from overfit.notebook import bundle  # noqa: E402
from overfit.notebook.errors import INSTALL, require  # noqa: E402
from overfit.runs import RunFolder  # noqa: E402

RUN = {**TINY, "schedule.steps": 60, "schedule.eval_every": 20}
PNG = b"\x89PNG"


class Sent:
    """What the widget sends to its front end (custom messages), kept instead of sent."""

    def __init__(self, lab: Lab) -> None:
        self.messages: list[tuple[dict, list]] = []
        lab.send = lambda content, buffers=None: self.messages.append((content, buffers or []))

    def live_types(self) -> set[str]:
        return {m["type"] for content, _ in self.messages if content["type"] == "live" for _, m in content["messages"]}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A tiny run trained to its end through the widget, with what its traits and messages were meanwhile."""
    lab = Lab("relu_1", overrides=RUN, runs_dir=tmp_path_factory.mktemp("nb") / "runs")
    sent = Sent(lab)
    seen: list[tuple[str, int]] = []
    lab.observe(lambda change: seen.append((change["new"][0]["status"], change["new"][0]["step"])), "runs")
    lab.start().wait()
    yield lab, sent, seen
    lab.close()


def test_the_runs_trait_follows_a_run_trained_in_the_background(finished):
    lab, sent, seen = finished
    (run,) = lab.runs
    assert (run["status"], run["step"], run["steps"]) == ("done", 60, 60)
    steps = [step for _, step in seen]
    assert len(seen) >= 2 and steps == sorted(steps) and seen[-1] == ("done", 60)  # sent again as it trained
    assert run["frames"] == [0, 20, 40, 60] == RunFolder(lab.paths[0]).frame_steps()
    assert run["curves"]["loss"][-1][0] == 60 and run["curves"]["dense_acc"][-1][0] == 60
    assert lab.latest[run["id"]]["step"] == 60 and base64.b64decode(lab.latest[run["id"]]["png"]).startswith(PNG)
    assert base64.b64decode(lab.targets[run["id"]]).startswith(PNG)
    # The live messages are the lab page's WebSocket messages, in batches.
    assert {"status", "tick", "eval"} <= sent.live_types()


def test_the_sender_thread_delivers_live_messages_while_the_kernel_waits_for_nothing(tmp_path):
    lab = Lab("relu_1", overrides={**RUN, "schedule.steps": 100_000}, runs_dir=tmp_path)
    sent = Sent(lab)
    try:
        lab.start()
        delivered_by_start = len(sent.messages)
        for _ in range(600):  # no wait(), no refresh: only the sender thread sends
            if "tick" in sent.live_types() and len(sent.messages) > delivered_by_start:
                break
            time.sleep(0.05)
        assert "tick" in sent.live_types() and len(sent.messages) > delivered_by_start
    finally:
        lab.close()


def test_step_trains_to_the_next_evaluation_and_pause_stops_the_step_count(tmp_path):
    lab = Lab("relu_1", overrides={**RUN, "schedule.steps": 100_000, "schedule.eval_every": 10}, runs_dir=tmp_path)
    try:
        lab.step().wait()
        assert (lab.runs[0]["status"], lab.runs[0]["step"]) == ("paused", 10)
        lab.start()
        assert lab.status() == {lab.runs[0]["id"]: "running"} and lab.runs[0]["status"] == "running"
        lab.pause()
        paused_at = lab.runs[0]["step"]
        assert lab.runs[0]["status"] == "paused" and 10 <= paused_at < 100_000
        time.sleep(0.3)
        lab.wait()
        assert (lab.runs[0]["status"], lab.runs[0]["step"]) == ("paused", paused_at)
        assert RunFolder(lab.paths[0]).status() == "paused"  # as the lab and `overfit train --resume` read it
    finally:
        lab.close()


def test_load_shows_an_existing_folders_history_and_serves_its_frames(finished):
    lab, _, _ = finished
    other = Lab.load(lab.paths[0])
    try:
        sent = Sent(other)
        (run,) = other.runs
        assert (run["id"], run["status"], run["frames"]) == (lab.runs[0]["id"], "done", [0, 20, 40, 60])
        assert run["curves"]["loss"] == lab.runs[0]["curves"]["loss"]
        other._on_message(other, {"type": "frame", "run": run["id"], "step": 20}, [])  # the step slider asks
        other._on_message(other, {"type": "frame", "run": run["id"], "step": 30}, [])  # no frame at 30
        (ok, buffers), (missing, _) = sent.messages
        assert ok["ok"] and buffers[0].startswith(PNG)
        assert not missing["ok"] and "has no frames/" in missing["error"]
        other._on_message(other, {"type": "action", "action": "start"}, [])  # a finished run is left as it is
        assert other.status() == {run["id"]: "done"} and other.message == ""
    finally:
        other.close()


@pytest.mark.parametrize("make, words", [
    (lambda d: Lab("no_such_preset", runs_dir=d), "unknown preset 'no_such_preset'"),
    (lambda d: Lab("relu_1", overrides={"model.hidden": "x"}, runs_dir=d), "model.hidden: expected"),
    (lambda d: Lab("relu_1", steps=-3, runs_dir=d), "schedule.steps"),
    (lambda d: Lab(*["relu_1"] * 5, runs_dir=d), "at most 4"),
    (lambda d: Lab.load(d / "missing"), "does not exist"),
    (lambda d: show(d / "missing"), "does not exist"),
])
def test_bad_input_is_one_line_in_a_notebook(tmp_path, make, words):
    with pytest.raises(NotebookError) as info:
        make(tmp_path)
    lines = info.value._render_traceback_()  # what IPython shows instead of a traceback
    assert len(lines) == 1 and "\n" not in lines[0] and words in lines[0]


def test_without_the_extra_one_line_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", None)  # as if not installed
    with pytest.raises(MissingExtra) as info:
        require("anywidget")
    assert info.value._render_traceback_() == [f"MissingExtra: the notebook widget needs anywidget: {INSTALL}"]
    assert "overfit-lab[notebook]" in INSTALL


def test_show_embeds_the_video_the_curves_and_the_final_picture(finished):
    lab, _, _ = finished
    page = show(lab.paths[0])._repr_html_()
    assert page.count("data:video/mp4;base64,") == 1 and page.count("data:image/png;base64,") == 2
    assert "step 60 of 60" in page and "done" in page


def test_the_widget_module_is_the_lab_pages_views_linked_not_copied(tmp_path):
    source = bundle.module_source()
    views = (bundle.LAB_JS / "views.js").read_text()
    assert "export class Views" in views and "class Views {" in source  # the page's file, its export unwrapped
    assert views.split("export class Views", 1)[1] in source
    assert 'from "./' not in source and source.count("export default") == 1
    assert ".overfit-widget {" in bundle.style_source() and "\nbody {" not in bundle.style_source()
    node = shutil.which("node")
    if node:  # the linked module parses as an ES module
        path = tmp_path / "widget.mjs"
        path.write_text(source)
        assert subprocess.run([node, "--check", str(path)], capture_output=True, text=True).returncode == 0


@pytest.mark.slow  # a kernel starts and imports torch
def test_a_notebook_runs_headless_with_the_widget_state_stored(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    cells = [
        f"from overfit.notebook import Lab\nlab = Lab('relu_1', overrides={RUN!r}, runs_dir={str(tmp_path / 'runs')!r})\nlab",
        "lab.start().wait()\nlab.runs[0]['status'], lab.runs[0]['step']",
        "Lab('no_such_preset')",
        "lab.close()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True, store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    shown, done, error, _ = (cell.outputs for cell in nb.cells)
    assert "application/vnd.jupyter.widget-view+json" in shown[0]["data"]
    assert done[0]["data"]["text/plain"] == "('done', 60)"
    assert error[0]["output_type"] == "error" and error[0]["traceback"] == [
        "NotebookError: unknown preset 'no_such_preset'; choose from " + ", ".join(__import__("overfit").presets.PRESETS)]
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    (lab,) = [s["state"] for s in states.values() if "runs" in s["state"]]
    assert lab["runs"][0]["step"] == 60 and lab["runs"][0]["frames"] == [0, 20, 40, 60]
