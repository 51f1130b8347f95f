"""Tests of the one run lifecycle (`session.train_sessions`, `start_sessions`, `budget.Pool`) and the ending it records."""

from __future__ import annotations

import functools
import json
import os
import signal

import pytest
import torch
from helpers import tiny_config

from overfit import budget
from overfit.errors import MemoryBudgetError, RunFolderError
from overfit.runs import RunFolder
from overfit.session import Session, start_sessions, train_sessions

tiny = functools.partial(tiny_config, {"optim.lr": 1e-2})  # the shared tiny run, learning faster


@pytest.fixture(autouse=True)
def no_media(monkeypatch):
    """final.png and the videos are written by test_recorder's runs; here a finished run needs only the files to exist."""
    def progress(frames, captions, mp4_path, gif_path, fps=8, meanwhile=None):
        mp4_path.write_bytes(b"mp4")
        gif_path.write_bytes(b"gif")
        if meanwhile is not None:
            meanwhile()

    monkeypatch.setattr("overfit.video.write_progress", progress)
    monkeypatch.setattr("overfit.plots.save_final_plot", lambda *a, **k: a[2].write_bytes(b"png"))
    monkeypatch.setattr("overfit.plots.save_samples_plot", lambda *a, **k: a[4].write_bytes(b"png"))


def ending(session: Session) -> dict:
    return json.loads((session.path / "ending.json").read_text())


def test_every_run_trained_together_records_how_it_ended(tmp_path):
    # Three runs at once: one finishes, one is stopped by a callback, one diverges (its weights poisoned at step 20).
    sessions = start_sessions([tiny(seed=0), tiny(seed=1), tiny(seed=2)], tmp_path, ["done", "stopped", "diverged"])

    def stop_at_20(event):
        if event.kind == "eval" and event.step == 20:
            event.trainer.request_stop()

    def poison(event):
        if event.kind == "eval" and event.step == 20:
            with torch.no_grad():
                for p in event.trainer.model.parameters():
                    p.fill_(float("nan"))

    results = train_sessions(sessions, [None, [stop_at_20], [poison]])
    assert [r.step for r in results[:2]] == [40, 20] and results[2].diverged is not None and results[2].diverged.step == 21
    assert ending(sessions[0]) == {"how": "finished", "step": 40, "reason": "trained all 40 steps"}
    assert ending(sessions[1]) == {"how": "interrupted", "step": 20, "reason": "interrupted"}
    assert ending(sessions[2])["how"] == "diverged" and ending(sessions[2])["step"] == results[2].diverged.step
    assert [RunFolder(s.path).finished() for s in sessions] == [True, False, False]
    assert [RunFolder(s.path).status() for s in sessions] == ["done", "paused", "failed"]
    assert all(not s.folder.locked for s in sessions)  # closed: every folder let go


def test_a_finished_run_is_not_resumed_until_its_budget_is_raised_and_then_forgets_its_ending(tmp_path):
    (session,) = start_sessions([tiny()], tmp_path, ["r"])
    train_sessions([session])
    with pytest.raises(RunFolderError, match="already at step 40 of 40") as info:
        Session.resume(session.path)
    assert info.value.field == "schedule.steps"
    resumed = Session.resume(session.path, {"schedule.steps": 60})
    assert not (session.path / "ending.json").exists()  # it trains again
    train_sessions([resumed])
    assert ending(resumed) == {"how": "finished", "step": 60, "reason": "trained all 60 steps"}


def test_a_run_stopped_early_on_purpose_stays_done(tmp_path):
    (session,) = start_sessions([tiny()], tmp_path, ["r"])

    def enough(event):
        if event.kind == "eval" and event.step == 20:
            session.stop_early("learned enough")
            assert ending(session) == {"how": "stopped", "step": 20, "reason": "learned enough"}  # written before the stop

    train_sessions([session], [[enough]])
    assert ending(session)["how"] == "stopped" and RunFolder(session.path).finished(10_000)
    with pytest.raises(RunFolderError, match="stopped early at step 20 \\(learned enough\\)"):
        Session.resume(session.path, {"schedule.steps": 100})


def test_an_error_in_training_is_recorded_in_the_run_and_raised(tmp_path):
    (session,) = start_sessions([tiny()], tmp_path, ["r"])

    def broken(event):
        if event.kind == "eval" and event.step == 20:
            raise ValueError("a callback broke\nsecond line")

    with pytest.raises(ValueError, match="a callback broke"):
        train_sessions([session], [[broken]])
    assert ending(session) == {"how": "failed", "step": 20, "reason": "a callback broke"}
    folder = RunFolder(session.path)
    assert folder.status() == "failed" and folder.error() == {"error": "a callback broke", "step": 20}
    assert not folder.locked


def test_ctrl_c_stops_every_run_at_a_checkpoint(tmp_path):
    sessions = start_sessions([tiny(seed=0), tiny(seed=1, **{"model.activation": "tanh"})], tmp_path, ["a", "b"])

    def interrupt(event):  # Ctrl-C arrives while the first run is at its step-20 evaluation
        if event.kind == "eval" and event.step == 20:
            os.kill(os.getpid(), signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    results = train_sessions(sessions, [[interrupt], None])
    assert all(r.interrupted and r.step < 40 for r in results)
    assert [ending(s)["how"] for s in sessions] == ["interrupted", "interrupted"]
    assert all(RunFolder(s.path).checkpoint()["step"] == r.step for s, r in zip(sessions, results))
    assert signal.getsignal(signal.SIGINT) is before  # the handler is put back


def test_runs_that_train_at_once_share_one_memory_budget(tmp_path):
    est = budget.estimate(tiny(), (16, 32))
    two, three = (budget.Estimate.together([est] * n).total for n in (2, 3))  # what one run at a time makes is not added
    pool = budget.Pool((two + three) // 2)
    first = Session.start(tiny(seed=0), tmp_path, "a", pool=pool)
    second = Session.start(tiny(seed=1), tmp_path, "b", pool=pool)
    assert pool.held == 2 * est.total
    with pytest.raises(MemoryBudgetError, match="3 runs trained together need") as info:
        Session.start(tiny(seed=2), tmp_path, "c", pool=pool)
    assert not (tmp_path / "c").exists()  # refused before a folder was made
    first.close()  # its share is given back
    third = Session.start(tiny(seed=2), tmp_path, "c", pool=pool)
    with pytest.raises(MemoryBudgetError, match="3 runs trained together"):
        Session.resume(first.path, pool=pool)  # resuming counts too
    second.close()
    third.close()
    assert pool.held == 0
    Session.resume(first.path, pool=pool).close()


def test_a_batch_that_does_not_fit_together_is_refused_whole_before_any_folder(tmp_path):
    est = budget.estimate(tiny(), (16, 32))
    three, four = (budget.Estimate.together([est] * n).total for n in (3, 4))
    with pytest.raises(MemoryBudgetError, match="4 runs trained together need"):
        start_sessions([tiny(seed=s) for s in range(4)], tmp_path, [f"s{s}" for s in range(4)], max_memory=(three + four) // 2)
    assert not tmp_path.exists() or list(tmp_path.iterdir()) == []


def test_resuming_reserves_memory_before_reading_the_checkpoint_or_the_picture(tmp_path, monkeypatch):
    (session,) = start_sessions([tiny(**{"schedule.steps": 20})], tmp_path, ["r"])
    train_sessions([session], until=20)
    config = json.loads((session.path / "config.json").read_text())
    config["model"]["hidden"] = [65536, 65536]  # an edited config.json: 17 GB of weights and Adam state
    (session.path / "config.json").write_text(json.dumps(config))
    read = []
    monkeypatch.setattr(RunFolder, "checkpoint", lambda self, *a, **k: read.append("checkpoint"))
    monkeypatch.setattr(RunFolder, "target", lambda self: read.append("target"))
    with pytest.raises(MemoryBudgetError, match="model.hidden"):
        Session.resume(session.path, {"schedule.steps": 40}, max_memory=10**9)
    assert read == [] and not RunFolder(session.path).locked


def test_a_failure_in_a_later_stack_leaves_the_endings_of_runs_already_done(tmp_path):
    # relu and tanh runs train in two stacks, relu's first; the tanh run's callback breaks at step 20.
    sessions = start_sessions([tiny(seed=0), tiny(seed=1, **{"model.activation": "tanh"})], tmp_path, ["relu", "tanh"])

    def broken(event):
        if event.kind == "eval" and event.step == 20:
            raise RuntimeError("broken callback")

    with pytest.raises(RuntimeError, match="broken callback"):
        train_sessions(sessions, [None, [broken]])
    assert ending(sessions[0]) == {"how": "finished", "step": 40, "reason": "trained all 40 steps"}
    assert ending(sessions[1])["how"] == "failed" and RunFolder(sessions[0].path).finished()


def test_runs_of_one_picture_load_it_once(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    from overfit import session as session_module

    picture = np.full((16, 32), 255, np.uint8)
    picture[4:12, 8:24] = 0
    Image.fromarray(picture).save(tmp_path / "p.png")
    loads = []
    real = session_module.load_target
    monkeypatch.setattr(session_module, "load_target", lambda data: loads.append(data) or real(data))
    configs = [tiny(seed=s, **{"data.image": str(tmp_path / "p.png")}) for s in range(3)]
    for s in start_sessions(configs, tmp_path / "runs", ["a", "b", "c"]):
        s.discard()
    assert len(loads) == 1
