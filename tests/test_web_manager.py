"""Tests of the lab's runs (`web.manager`, `web.labrun`, `web.training`): ordinary run folders, created and resumed through Session."""

from __future__ import annotations

import functools
import io
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from PIL import Image

import lab_hooks
from web_client import TINY, create, lab, make_lab, refusal, tiny, wait_for  # noqa: F401  (fixtures)

from overfit.runs import RunFolder


def test_a_run_trains_to_the_end_learns_and_offers_its_files(lab, tmp_path):
    run = create(lab, name="first")
    assert run["id"] == "first" and run["status"] == "new" and run["step"] == 0
    folder = tmp_path / "runs" / "first"
    assert json.loads((folder / "config.json").read_text())["model"]["hidden"] == [16, 16]
    assert [r["id"] for r in lab.get("/api/runs").json()["runs"]] == ["first"]

    assert lab.post("/api/runs/first/start").json()["status"] == "running"
    done = wait_for(lab, "first", lambda d: d["status"] == "done")
    assert done["step"] == 300 and done["frames"] == [0, 100, 200, 300]
    accuracy = [v for _, v in done["curves"]["dense_acc"]]
    assert [s for s, _ in done["curves"]["dense_acc"]] == [0, 100, 200, 300]
    assert [s for s, _ in done["curves"]["dense_iou"]] == [0, 100, 200, 300]  # every metric the run records has a curve
    assert accuracy[-1] > accuracy[0] + 0.1, accuracy  # it learned
    assert done["curves"]["loss"][-1][1] < done["curves"]["loss"][0][1]
    assert done["metric"] == "dense_acc" and done["metric_value"] == pytest.approx(accuracy[-1])
    # No held-out pixels: no fit or test curve, no held-out headline.
    assert done["holdout"] == "none" and done["held_out"] is False
    assert "fit_acc" not in done["curves"] and "test_acc" not in done["curves"]
    assert done["fit_value"] is None and done["test_value"] is None
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


def test_a_gray_run_is_summed_up_by_its_psnr_and_shown_as_it_is(lab):
    run = create(lab, {**TINY, "data": {**TINY["data"], "mode": "gray"}}, name="gray")
    assert run["metric"] == "dense_psnr" and run["mode"] == "gray"
    lab.post("/api/runs/gray/step")
    done = wait_for(lab, "gray", lambda d: d["status"] == "paused")
    assert [s for s, _ in done["curves"]["dense_psnr"]] == [0, 100] and done["metric_value"] > 0
    for url in ("/api/runs/gray/frames/100.png", "/api/runs/gray/target.png"):
        with Image.open(io.BytesIO(lab.get(url).content)) as img:
            assert img.size == (64, 32) and img.mode == "L"  # gray values, no colour map


# -- held-out pixels (data.holdout) ------------------------------------------------------------------------------

def test_a_run_with_held_out_pixels_shows_its_fit_and_test_curves_and_held_out_headline(lab, tmp_path):
    cfg = tiny(steps=100_000)
    cfg["data"]["holdout"] = "checkerboard"
    run_id = create(lab, cfg, name="held")["id"]
    evals = []
    with lab.websocket_connect(f"ws://127.0.0.1/api/runs/{run_id}/live") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        lab.post(f"/api/runs/{run_id}/step")  # to the next evaluation (step 100), then paused
        while True:
            msg = ws.receive_json()
            if msg["type"] == "eval":
                evals.append(msg)
            if msg["type"] == "status" and msg["run"]["status"] == "paused":
                break
    records = RunFolder(tmp_path / "runs" / run_id).metrics()
    assert [r["step"] for r in records] == [0, 100]
    # Each evaluation message names the record's keys of the dense, training-pixel and held-out headlines.
    assert [(m["metric"], m["fit"], m["test"]) for m in evals] == [("dense_acc", "fit_acc", "test_acc")] * 2
    assert [(m["record"]["fit_acc"], m["record"]["test_acc"]) for m in evals] == [(r["fit_acc"], r["test_acc"]) for r in records]

    done = lab.get(f"/api/runs/{run_id}").json()  # a run not training is read from its folder
    assert [s for s, _ in done["curves"]["dense_acc"]] == [0, 100]
    assert done["curves"]["fit_acc"] == [[r["step"], r["fit_acc"]] for r in records]
    assert done["curves"]["test_acc"] == [[r["step"], r["test_acc"]] for r in records]
    assert set(done["curve_strides"].values()) == {1} and set(done["curve_strides"]) == set(done["curves"])
    assert done["holdout"] == "checkerboard" and done["held_out"] is True
    assert (done["fit_value"], done["test_value"]) == (records[-1]["fit_acc"], records[-1]["test_acc"])
    assert done["metric_value"] == records[-1]["dense_acc"]
    listed = {r["id"]: r for r in lab.get("/api/runs").json()["runs"]}
    assert listed[run_id]["test_value"] == records[-1]["test_acc"]  # the run list shows the held-out headline


def test_evaluations_followed_live_add_fit_and_test_points_and_name_their_keys(lab):
    run_id = create(lab, tiny(), name="followed")["id"]
    run = lab.app.state.manager.get(run_id)
    sent = []
    lab.app.state.mailboxes.publish = lambda rid, message, latest_only=False: sent.append(message)
    held = [{"step": 0, "dense_acc": 0.5, "fit_acc": 0.6, "test_acc": 0.4}, {"step": 100, "dense_acc": 0.7, "fit_acc": 0.8, "test_acc": 0.55}]
    for record in held + [{"step": 200, "dense_acc": 0.9}]:  # the last as a run without held-out pixels records it
        run.apply({"type": "eval", "step": record["step"], "record": record, "frame": None})  # as its process sends it
    detail = run.detail()
    assert detail["curves"]["dense_acc"] == [(0, 0.5), (100, 0.7), (200, 0.9)]
    assert detail["curves"]["fit_acc"] == [(0, 0.6), (100, 0.8)] and detail["curves"]["test_acc"] == [(0, 0.4), (100, 0.55)]
    assert detail["fit_value"] is None and detail["test_value"] is None  # the last record has none
    evals = [m for m in sent if m["type"] == "eval"]
    assert [(m["metric"], m.get("fit"), m.get("test")) for m in evals] == [
        ("dense_acc", "fit_acc", "test_acc"), ("dense_acc", "fit_acc", "test_acc"), ("dense_acc", None, None)]


@pytest.mark.parametrize("holdout", ["half", "0", "1.5", "Checkerboard"])
def test_a_bad_holdout_is_refused_with_422_naming_the_field(lab, tmp_path, holdout):
    cfg = tiny()
    cfg["data"]["holdout"] = holdout
    message = refusal(lab.post("/api/runs", json={"config": cfg}), 422, "data.holdout")
    assert "checkerboard" in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no run folder made


def test_pause_keeps_a_checkpoint_and_frees_the_run_for_the_command_line(lab, tmp_path):
    from overfit.cli import main

    run_id = create(lab, tiny(steps=100_000, eval_every=100))["id"]
    lab.post(f"/api/runs/{run_id}/start")
    wait_for(lab, run_id, lambda d: d["step"] >= 150)
    paused = lab.post(f"/api/runs/{run_id}/pause").json()
    assert paused["status"] == "paused"
    folder = tmp_path / "runs" / run_id
    assert RunFolder.open(folder).checkpoint()["step"] == paused["step"] > 0
    # The lab let go of the folder: the command line can take it.
    held = RunFolder.open(folder)
    held.lock()
    held.unlock()

    # Step: exactly one evaluation interval, to the next evaluation, then paused again.
    lab.post(f"/api/runs/{run_id}/step")
    stepped = wait_for(lab, run_id, lambda d: d["status"] == "paused")
    assert stepped["step"] == (paused["step"] // 100 + 1) * 100
    assert stepped["frames"][-1] == stepped["step"]
    assert [r["step"] for r in RunFolder(folder).metrics()] == list(range(0, stepped["step"] + 1, 100))

    # ... and `overfit train --resume` continues it from there.
    result = CliRunner().invoke(main, ["train", "--resume", str(folder), "--steps", str(stepped["step"] + 100), "-q"])
    assert result.exit_code == 0, result.output
    assert RunFolder(folder).metrics()[-1]["step"] == stepped["step"] + 100
    assert lab.get(f"/api/runs/{run_id}").json()["status"] == "done"


def test_a_run_held_by_another_process_is_busy_and_refused_with_409(lab, tmp_path):
    create(lab, tiny(steps=100_000), name="held")
    other = RunFolder.open(tmp_path / "runs" / "held")  # stands in for `overfit train --resume` in another process
    other.lock()
    try:
        assert lab.get("/api/runs/held").json()["status"] == "busy"
        assert "in use" in refusal(lab.post("/api/runs/held/start"), 409)
    finally:
        other.unlock()
    assert lab.get("/api/runs/held").json()["status"] == "new"


def test_reset_starts_a_new_folder_and_keeps_the_old_one(lab, tmp_path):
    old = create(lab, tiny(steps=100_000), name="old")
    lab.post("/api/runs/old/step")
    wait_for(lab, "old", lambda d: d["status"] == "paused" and d["step"] == 100)
    new = lab.post("/api/runs/old/reset")
    assert new.status_code == 201
    fresh = new.json()
    assert fresh["id"] != old["id"] and fresh["step"] == 0 and fresh["status"] == "new"
    assert fresh["config"] == old["config"]
    assert RunFolder(tmp_path / "runs" / "old").metrics()[-1]["step"] == 100  # untouched


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
    assert detail["frames"] == [0, 100] and len(detail["curves"]["dense_acc"]) == 2
    assert set(detail["curve_strides"].values()) == {1} and "fit_acc" not in detail["curves"]


def test_the_run_list_rereads_a_folder_only_when_it_changed_and_still_sees_another_process(make_lab, tmp_path, monkeypatch):
    first = make_lab()
    create(first, tiny(steps=100_000), name="kept")
    first.post("/api/runs/kept/step")
    wait_for(first, "kept", lambda d: d["status"] == "paused")
    lab = make_lab()
    reads = []
    metrics = RunFolder.metrics
    monkeypatch.setattr(RunFolder, "metrics", lambda self: reads.append(self.path.name) or metrics(self))
    assert [(r["id"], r["step"]) for r in lab.get("/api/runs").json()["runs"]] == [("kept", 100)]
    assert reads == ["kept"]  # read once, status and error from the same records
    reads.clear()
    for _ in range(3):
        assert lab.get("/api/runs").json()["runs"][0]["status"] == "paused"
    assert reads == []  # unchanged: nothing read again
    # Another process trains it on: it shows as busy at once, and its new evaluation once written.
    other = RunFolder.open(tmp_path / "runs" / "kept")
    other.lock()
    try:
        assert lab.get("/api/runs").json()["runs"][0]["status"] == "busy"
        with open(tmp_path / "runs" / "kept" / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 150, "train_loss": 0.5, "dense_acc": 0.9}) + "\n")
        run = lab.get("/api/runs").json()["runs"][0]
        assert (run["status"], run["step"], run["metric_value"]) == ("busy", 150, 0.9) and reads == ["kept"]
    finally:
        other.unlock()
    assert lab.get("/api/runs/kept").json()["status"] == "paused"


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


def test_runs_side_by_side_take_turns_on_the_one_worker_thread(lab):
    a, b = (create(lab, tiny(steps=100_000))["id"] for _ in range(2))
    for run_id in (a, b):
        assert lab.post(f"/api/runs/{run_id}/start").json()["status"] == "running"
    for run_id in (a, b):
        wait_for(lab, run_id, lambda d: d["step"] >= 200)
    assert lab.get("/api/runs").json()["running"] == 2
    for run_id in (a, b):
        assert lab.post(f"/api/runs/{run_id}/pause").json()["status"] == "paused"


# -- responsiveness: the manager's lock is never held while the worker works --------------------------------------

def _in_thread(fn) -> tuple[threading.Thread, list, threading.Event]:
    """Run fn() in a thread: (the thread, [its result], an event set when it returns)."""
    out: list = []
    done = threading.Event()

    def target() -> None:
        try:
            out.append(fn())
        finally:
            done.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, out, done


def _gate(tmp_path, hook) -> tuple[Path, Any]:
    """A folder the training process and the test talk through, and `hook` bound to it (for `RunManager.setup`)."""
    gate = tmp_path / "gate"
    gate.mkdir()
    return gate, functools.partial(hook, str(gate))


def _wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + 60  # a hang guard, not a speed limit
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.01)


def test_neither_reads_nor_a_start_wait_for_a_slow_create(lab, tmp_path):
    first = create(lab, tiny(steps=100_000), name="first")["id"]
    gate, lab.app.state.manager.setup = _gate(tmp_path, lab_hooks.hold_start)  # a wide model: slow to make
    try:
        creating, created, _ = _in_thread(lambda: lab.post("/api/runs", json={"config": tiny(), "name": "slow"}))
        _wait_for_file(gate / "entered")
        # A start opens its run in a process of its own: it does not queue behind the create, and neither do reads.
        _, started, started_done = _in_thread(lambda: lab.post(f"/api/runs/{first}/start"))
        _, listed, listed_done = _in_thread(lambda: lab.get("/api/runs"))
        _, detail, detail_done = _in_thread(lambda: lab.get(f"/api/runs/{first}"))
        assert started_done.wait(60) and listed_done.wait(30) and detail_done.wait(30), "a request waited for the create"
        assert creating.is_alive()
        assert started[0].json()["status"] == "running"
        assert [r["id"] for r in listed[0].json()["runs"]] == ["first"] and detail[0].json()["status"] in ("new", "running")
    finally:
        (gate / "release").touch()
    creating.join(60)
    assert created[0].status_code == 201 and created[0].json()["id"] == "slow"
    lab.post(f"/api/runs/{first}/pause")


def test_many_requests_waiting_for_a_create_leave_threads_to_serve_reads(lab, tmp_path):
    gate, lab.app.state.manager.setup = _gate(tmp_path, lab_hooks.refuse_start)
    worker = lab.app.state.manager.worker
    try:
        # More creates than the server's shared pool of threads for routes (40), all waiting for the first.
        posts = [_in_thread(lambda: lab.post("/api/runs", json={"config": TINY})) for _ in range(45)]
        _wait_for_file(gate / "entered")
        deadline = time.monotonic() + 60
        while worker._tasks.qsize() < 39:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _, listed, listed_done = _in_thread(lambda: lab.get("/api/runs"))
        assert listed_done.wait(30), "a GET found no thread to run in"
        assert listed[0].json()["runs"] == []
    finally:
        (gate / "release").touch()
    for thread, answer, _ in posts:
        thread.join(60)
        assert answer[0].status_code == 422 and answer[0].json() == {"error": "refused while the test waited", "field": "model.hidden"}


def test_a_runs_first_chunk_is_one_step_so_a_slow_model_pauses_within_a_step(lab, tmp_path):
    run_id = create(lab, tiny(steps=100_000))["id"]
    gate, lab.app.state.manager.setup = _gate(tmp_path, lab_hooks.hold_first_step)
    lab.post(f"/api/runs/{run_id}/start")
    try:
        _wait_for_file(gate / "entered")
        training = lab.app.state.manager.get(run_id).training
        training.request_pause()  # pressed while the first step runs
    finally:
        (gate / "release").touch()
    training.join()
    assert RunFolder(lab.app.state.manager.runs_dir / run_id).checkpoint()["step"] == 1  # paused after that one step
    assert lab.get(f"/api/runs/{run_id}").json()["status"] == "paused"


def test_two_starts_of_one_run_start_it_once_and_the_second_sets_where_it_stops(lab, tmp_path):
    run_id = create(lab, tiny(steps=100_000))["id"]
    gate, lab.app.state.manager.setup = _gate(tmp_path, lab_hooks.hold_resume)
    try:
        first, _, _ = _in_thread(lambda: lab.post(f"/api/runs/{run_id}/start"))
        _wait_for_file(gate / "entered")
        second, stepped, _ = _in_thread(lambda: lab.post(f"/api/runs/{run_id}/step"))
    finally:
        (gate / "release").touch()
    first.join(60)
    second.join(60)
    assert stepped[0].status_code == 200 and (gate / "resumes").read_text().splitlines() == ["resume"]
    assert wait_for(lab, run_id, lambda d: d["status"] == "paused")["step"] == 100  # the step's `until` won


# -- each run in a process of its own -----------------------------------------------------------------------

def test_a_killed_training_process_fails_its_run_with_why_and_takes_nothing_else_down(lab, tmp_path):
    import os
    import signal

    for name in ("victim", "other"):
        create(lab, tiny(steps=100_000, eval_every=50), name=name)
        lab.post(f"/api/runs/{name}/start")
    wait_for(lab, "victim", lambda d: d["step"] >= 60)  # past its first checkpoint (step 50)
    manager = lab.app.state.manager
    victim = manager.get("victim").training
    os.kill(victim.process.pid, signal.SIGKILL)  # as the kernel's OOM killer would
    victim.join()
    failed = lab.get("/api/runs/victim").json()
    assert failed["status"] == "failed" and "killed (SIGKILL" in failed["error"] and "last checkpoint" in failed["error"], failed
    folder = RunFolder(tmp_path / "runs" / "victim")
    assert folder.error()["error"] == failed["error"] and not folder.held_elsewhere()  # kept on disk, lock let go
    assert manager.pool.held > 0 and len(manager.running()) == 1  # its share given back; the other trains on
    other = lab.get("/api/runs/other").json()["step"]
    assert wait_for(lab, "other", lambda d: d["step"] > other)["status"] == "running"
    # Started again, it resumes from its last checkpoint, and its error is gone.
    checkpoint = folder.checkpoint()["step"]
    assert checkpoint >= 50
    lab.post("/api/runs/victim/start")
    assert lab.get("/api/runs/victim").json()["error"] is None
    assert wait_for(lab, "victim", lambda d: d["step"] > checkpoint)["status"] == "running"
    for name in ("victim", "other"):
        assert lab.post(f"/api/runs/{name}/pause").json()["status"] == "paused"
    assert manager.pool.held == 0


def test_a_process_killed_right_after_writing_an_evaluation_is_recorded_failed_at_that_step(lab, tmp_path):
    # The lab has not heard of that evaluation: the failure is still recorded at the folder's last step, not before it
    # (an ending older than the last record would not count, and the run would show as paused).
    create(lab, tiny(steps=100_000, eval_every=50, log_every=1000), name="cut")
    lab.app.state.manager.setup = lab_hooks.die_at_an_evaluation
    lab.post("/api/runs/cut/start")
    lab.app.state.manager.get("cut").training.join()
    folder = RunFolder(tmp_path / "runs" / "cut")
    assert [r["step"] for r in folder.metrics()] == [0, 50]
    failed = lab.get("/api/runs/cut").json()
    assert failed["status"] == "failed" and "killed (SIGKILL" in failed["error"], failed
    assert folder.error() == {"error": failed["error"], "step": 50}


def test_runs_training_share_the_cores_and_take_them_back_when_one_stops(lab, tmp_path, monkeypatch):
    from overfit.web import manager as manager_module

    monkeypatch.setattr(manager_module, "cores", lambda: 4)
    manager = lab.app.state.manager
    manager.max_runs = 4
    gate, manager.setup = _gate(tmp_path, lab_hooks.record_threads)
    for name in ("a", "b"):
        create(lab, tiny(steps=100_000), name=name)
    lab.post("/api/runs/a/start")
    assert manager.get("a").training.threads == 4  # alone: every core
    lab.post("/api/runs/b/start")
    assert [manager.get(n).training.threads for n in ("a", "b")] == [2, 2]
    seen = (gate / "threads").read_text().splitlines()
    wait_for(lab, "b", lambda d: d["step"] > 20)
    assert "4" in seen and "2" in (gate / "threads").read_text().splitlines()[len(seen):]  # the processes took their share
    lab.post("/api/runs/b/pause")
    assert manager.get("a").training.threads == 4
    lab.post("/api/runs/a/pause")


def test_a_training_process_whose_lab_is_gone_pauses_at_a_checkpoint(lab, tmp_path):
    from overfit.web import runner, training

    run_id = create(lab, tiny(steps=100_000, eval_every=1000), name="orphan")["id"]
    ctx = training.context()
    here, there = ctx.Pipe()
    process = ctx.Process(target=runner.main, args=(there, str(tmp_path / "runs" / run_id), None, 1 << 30, 1, 0), daemon=True)
    process.start()
    there.close()
    assert here.recv()["type"] == "started"
    step = 0
    while step < 30:  # ticks until it has trained a while
        message = here.recv()
        step = message.get("step", step)
    here.close()  # the lab is gone (killed: its end of the pipe closed)
    process.join(60)
    assert process.exitcode == 0
    folder = RunFolder(tmp_path / "runs" / run_id)
    ending = folder.ending()
    assert ending.how == "interrupted" and ending.step >= 30 and folder.checkpoint()["step"] == ending.step
    assert not folder.held_elsewhere()


# -- a failed run keeps its error --------------------------------------------------------------------------------

def test_a_run_that_fails_before_its_first_checkpoint_keeps_its_error_after_a_restart(make_lab, tmp_path):
    lab = make_lab()
    lab.app.state.manager.setup = lab_hooks.diverge  # its training process's evaluations say NaN
    run_id = create(lab, tiny(steps=300), name="broken")["id"]
    lab.post(f"/api/runs/{run_id}/start")
    failed = wait_for(lab, run_id, lambda d: d["status"] != "running" and d["status"] != "new")
    assert failed["status"] == "failed" and "diverged" in failed["error"], failed
    folder = tmp_path / "runs" / run_id
    assert not (folder / "checkpoint.pt").exists()  # it failed before its first checkpoint
    assert RunFolder(folder).error() == {"error": failed["error"], "step": 0}
    assert lab.get(f"/api/runs/{run_id}").json()["error"] == failed["error"]  # a reload of the page

    again = make_lab()  # the lab restarted
    listed = again.get("/api/runs").json()["runs"]
    assert [(r["id"], r["status"], r["error"]) for r in listed] == [("broken", "failed", failed["error"])]

    again.post(f"/api/runs/{run_id}/step")  # started again, it trains: the error is gone
    stepped = wait_for(again, run_id, lambda d: d["status"] == "paused")
    assert stepped["error"] is None and stepped["step"] == 100 and not (folder / "error.json").exists()


# -- caps ----------------------------------------------------------------------------------------------------------

def test_run_folders_are_capped_with_a_clear_message(make_lab, tmp_path):
    lab = make_lab(max_folders=2)
    create(lab, name="a")
    create(lab, name="b")
    message = refusal(lab.post("/api/runs", json={"config": TINY, "name": "c"}), 429)
    assert "2 run folders" in message and "--max-folders 2" in message and "remove" in message
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a", "b"]  # nothing half-made
    refusal(lab.post("/api/runs/a/reset"), 429)  # a reset makes a folder too


def test_runs_training_in_the_lab_share_one_memory_budget(lab):
    # Another run of the same size holds its share of a budget that fits one such run: starting this one is refused,
    # naming the budget, and nothing trains; once the other lets go, it starts.
    from overfit.budget import Estimate, Pool, estimate
    from overfit.config import RunConfig

    create(lab, name="late")
    manager = lab.app.state.manager
    folder = RunFolder(manager.runs_dir / "late")
    cfg = RunConfig.from_json((folder.path / "config.json").read_text())
    one = estimate(cfg, folder.target_size())
    manager.pool = Pool((one.total + Estimate.together([one, one]).total) // 2)
    _, release = manager.pool.reserve(cfg, folder.target_size())
    message = refusal(lab.post("/api/runs/late/start"), 422)
    assert "2 runs trained together need" in message and "budget" in message
    assert lab.get("/api/runs/late").json()["status"] == "new" and not folder.locked
    release()
    assert lab.post("/api/runs/late/start").json()["status"] == "running"
    assert wait_for(lab, "late", lambda d: d["status"] == "done")["step"] == 300
    assert manager.pool.held == 0  # a run that stopped gave its share back


def test_a_run_stopped_while_writing_its_videos_gets_them_when_started_again(lab, tmp_path):
    create(lab, name="cut")
    lab.post("/api/runs/cut/start")
    wait_for(lab, "cut", lambda d: d["status"] == "done")
    folder = tmp_path / "runs" / "cut"
    for name in ("final.png", "progress.mp4", "progress.gif", "ending.json"):  # as a kill while writing them leaves it
        (folder / name).unlink()
    assert lab.get("/api/runs/cut").json()["status"] == "paused"
    lab.post("/api/runs/cut/start")
    done = wait_for(lab, "cut", lambda d: d["status"] == "done")
    assert done["step"] == 300 and all(done["files"].values()), done["files"]
    assert json.loads((folder / "ending.json").read_text())["how"] == "finished"


def test_a_script_without_a_main_guard_makes_lab_runs_once(tmp_path):
    # The lab's processes run only its own functions: a plain script (no `if __name__ == "__main__":`) is not run
    # again in each of them, as multiprocessing's fork server would otherwise do.
    import subprocess
    import sys

    script = tmp_path / "plain.py"
    script.write_text(
        "import sys\n"
        "from pathlib import Path\n"
        "from overfit.config import RunConfig\n"
        "from overfit.web.manager import RunManager\n"
        "from overfit.web.stream import Mailboxes\n"
        "print('script ran')\n"
        "manager = RunManager(Path(sys.argv[1]), Mailboxes(), 1, lambda path: None)\n"
        f"run = manager.create(RunConfig.from_dict({TINY!r}), 'plain')\n"
        "manager.start('plain', until=20)\n"
        "manager.get('plain').training.join()\n"
        "print('trained', manager.get('plain').step)\n"
        "manager.shutdown()\n")
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script ran", "trained 20"], done.stdout + done.stderr
