"""The disk a run may write is bounded before it starts: a runs folder that cannot hold it is refused, nothing made."""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest

from overfit import diskspace
from overfit.config import RunConfig
from overfit.errors import DiskBudgetError
from overfit.session import Session, start_sessions

TINY = RunConfig().with_overrides({"data.text": "A", "data.width": 32, "data.height": 16, "schedule.steps": 20,
                                   "schedule.eval_every": 10})
Usage = namedtuple("Usage", "total used free")


def test_the_estimate_grows_with_evaluations_and_picture_and_bounds_the_frames():
    few, many = TINY, TINY.with_overrides({"schedule.eval_every": 1})
    assert many.schedule.evaluation_count() == 21 and few.schedule.evaluation_count() == 3
    frame = 32 * 16 + diskspace.FILE_OVERHEAD  # a gray frame, uncompressed
    assert diskspace.disk_estimate(many) - diskspace.disk_estimate(few) >= 18 * frame
    assert diskspace.disk_estimate(few, (160, 320)) > diskspace.disk_estimate(few, (16, 32)) + 3 * 160 * 320
    # 50,000 evaluations of a 4096 x 4096 picture: the case a disk budget exists for.
    huge = RunConfig().with_overrides({"schedule.eval_every": 2})
    assert diskspace.disk_estimate(huge, (4096, 4096)) > 50_000 * 4096 * 4096


def test_a_run_the_runs_folder_cannot_hold_is_refused_before_its_folder_exists(tmp_path, monkeypatch):
    need = diskspace.disk_estimate(TINY)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * need, 9 * need, need))  # free: less than need / 0.9
    runs = tmp_path / "runs"
    with pytest.raises(DiskBudgetError) as e:
        Session.start(TINY, runs, "r")
    assert e.value.field == "schedule.eval_every" and "the run needs up to" in str(e.value) and "free" in str(e.value)
    assert not (runs / "r").exists()
    # Two runs that fit one at a time but not together: the batch is refused whole.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * need, 8 * need, int(1.5 * need / diskspace.DISK_SHARE)))
    with pytest.raises(DiskBudgetError, match="2 runs need"):
        start_sessions([TINY, TINY.with_overrides({"seed": 1})], runs, ["a", "b"])
    assert not runs.exists() or not any(runs.iterdir())
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * need, 0, 10 * need))
    session = Session.start(TINY, runs, "fits")
    session.close()


def _digest(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_resumed_run_is_refused_when_the_rest_of_its_schedule_does_not_fit_and_its_folder_is_unchanged(tmp_path, monkeypatch):
    cfg = TINY.with_overrides({"schedule.steps": 40})
    with Session.start(cfg, tmp_path, "paused") as session:
        session.run(until=10)
    run = tmp_path / "paused"
    # What is still to write: from the checkpoint at step 10, three of the five evaluations; raised to 2,000 steps, 199.
    rest, whole = diskspace.disk_estimate(cfg, None, 10), diskspace.disk_estimate(cfg)
    raised = diskspace.disk_estimate(cfg.with_overrides({"schedule.steps": 2000}), None, 10)
    assert diskspace.evaluations_after(cfg, 10) == 3 and rest < whole < raised
    before = _digest(run)
    free = int((rest + raised) / 2 / diskspace.DISK_SHARE)  # holds the rest of the schedule, not the raised one
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * free, 9 * free, free))
    with pytest.raises(DiskBudgetError) as e:
        Session.resume(run, {"schedule.steps": "2000"})
    words = str(e.value)
    assert e.value.field == "schedule.eval_every" and "\n" not in words
    assert "resumed at step 10 needs up to" in words and "199 evaluations" in words and "free" in words
    assert _digest(run) == before
    # Too little for even the rest of the run's own schedule: refused too, the folder as it was.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * rest, 10 * rest, rest // 2))
    with pytest.raises(DiskBudgetError, match="3 evaluations"):
        Session.resume(run)
    assert _digest(run) == before
    # The rest of the schedule fits (a whole new run would not need to): it resumes and trains to the end.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: Usage(10 * free, 9 * free, free))
    with Session.resume(run) as session:
        assert session.trainer.step == 10
        session.run()
        assert session.trainer.step == 40
