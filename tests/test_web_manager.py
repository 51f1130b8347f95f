"""Tests of the lab's runs (`web.manager`, `web.labrun`, `web.turns`): ordinary run folders, created and resumed through Session."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from PIL import Image
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
    accuracy = [v for _, v in done["curves"]["metric"]]
    assert [s for s, _ in done["curves"]["metric"]] == [0, 100, 200, 300]
    assert accuracy[-1] > accuracy[0] + 0.1, accuracy  # it learned
    assert done["curves"]["loss"][-1][1] < done["curves"]["loss"][0][1]
    assert done["metric"] == "dense_acc" and done["metric_value"] == pytest.approx(accuracy[-1])
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
    assert [s for s, _ in done["curves"]["metric"]] == [0, 100] and done["metric_value"] > 0
    for url in ("/api/runs/gray/frames/100.png", "/api/runs/gray/target.png"):
        with Image.open(io.BytesIO(lab.get(url).content)) as img:
            assert img.size == (64, 32) and img.mode == "L"  # gray values, no colour map


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
    assert detail["frames"] == [0, 100] and len(detail["curves"]["metric"]) == 2
    assert detail["curve_strides"] == {"loss": 1, "metric": 1}


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
