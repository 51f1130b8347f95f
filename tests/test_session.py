"""Tests for overfit.session: starting a run into a new folder, and resuming one exactly."""

from __future__ import annotations

import functools
import json
import math
import pathlib

import numpy as np
import pytest
import torch
from helpers import tiny_config

from overfit import plots, video
from overfit.config import RunConfig
from overfit import budget, memory, targets, training
from overfit.errors import AllocationError, MemoryBudgetError, RunBusyError, RunExistsError, RunFolderError, TargetError
from overfit.images import read_png
from overfit.runs import RunFolder
from overfit.session import RESUMABLE, Session
from overfit.training import Trainer

tiny = functools.partial(tiny_config, {"optim.lr": 1e-2})  # the shared tiny run, learning faster


def assert_same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def without_time(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "train_seconds"} for r in records]


@pytest.fixture
def real_media():
    """Requested by tests that look at the pictures and videos themselves."""


@pytest.fixture(autouse=True)
def fast_media(request, monkeypatch):
    """Matplotlib figures and ffmpeg take most of a tiny run's time; `test_recorder` covers them."""
    if "real_media" in request.fixturenames:
        return

    def placeholder(*args, **kwargs):
        path = next(a for a in [*args, *kwargs.values()] if isinstance(a, pathlib.Path))
        path.write_bytes(b"placeholder")

    def progress(frames, captions, mp4_path, gif_path, fps=8, meanwhile=None):
        assert len(frames) == len(captions)
        for path in (mp4_path, gif_path):
            pathlib.Path(path).write_bytes(b"placeholder")
        if meanwhile is not None:
            meanwhile()

    monkeypatch.setattr(plots, "save_samples_plot", placeholder)
    monkeypatch.setattr(plots, "save_final_plot", placeholder)
    monkeypatch.setattr(video, "write_progress", progress)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """An uninterrupted run of `tiny()`: its folder and its trainer."""
    with Session.start(tiny(), tmp_path_factory.mktemp("straight"), "run") as session:
        session.run()
    return session


# -- start -------------------------------------------------------------------------------


def test_start_writes_config_target_and_samples_and_holds_the_folder(tmp_path, real_media):
    cfg = tiny()
    with Session.start(cfg, tmp_path / "runs", "a") as session:
        assert session.path == tmp_path / "runs" / "a"
        names = sorted(p.name for p in session.path.iterdir() if p.name != ".lock")
        assert names == ["config.json", "samples.png", "target.png"]
        assert RunConfig.from_json((session.path / "config.json").read_text()) == cfg
        assert np.array_equal(read_png(session.path / "target.png"), session.trainer.target.image)
        assert RunFolder(session.path).held_elsewhere()
        assert RunFolder.open(session.path).status() == "new"
    assert not RunFolder(session.path).held_elsewhere()


def test_a_run_writes_metrics_frames_checkpoint_and_media(straight):
    folder = RunFolder.open(straight.path)
    assert [r["step"] for r in folder.metrics()] == [0, 20, 40]
    assert folder.frame_steps() == [0, 20, 40]
    assert folder.checkpoint()["step"] == 40
    for name in ("final.png", "progress.mp4", "progress.gif"):  # real ones: the fixture ran before the stubs
        assert (folder.path / name).stat().st_size > 100, name
    assert folder.status() == "done"
    assert straight.trainer.step == 40


def test_start_pins_the_decay_horizon_into_config_json(tmp_path):
    with Session.start(tiny(**{"optim.lr_final": 1e-4}), tmp_path, "a") as session:
        written = json.loads((session.path / "config.json").read_text())
        assert written["optim"]["lr_decay_steps"] == 40
        assert session.trainer.cfg.optim.lr_decay_steps == 40


def test_start_with_a_bad_picture_leaves_no_folder(tmp_path):
    runs = tmp_path / "runs"
    with pytest.raises(TargetError):
        Session.start(tiny(**{"data.image": str(tmp_path / "missing.png")}), runs, "a")
    assert not runs.exists()
    runs.mkdir()
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(TargetError):
        Session.start(tiny(**{"data.image": str(tmp_path / "broken.png")}), runs)
    assert list(runs.iterdir()) == []


def test_start_that_fails_while_writing_removes_its_new_folder(tmp_path, monkeypatch):
    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(plots, "save_samples_plot", fail)
    with pytest.raises(OSError, match="disk full"):
        Session.start(tiny(), tmp_path, "a")
    assert list(tmp_path.iterdir()) == []


def test_start_never_reuses_a_folder(tmp_path):
    with Session.start(tiny(), tmp_path, "a"):
        pass
    before = sorted(p.name for p in (tmp_path / "a").iterdir())
    with pytest.raises(RunExistsError):
        Session.start(tiny(), tmp_path, "a")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == before


# -- memory ---------------------------------------------------------------------------------

CPU_OOM = "[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 bytes."


def test_start_over_the_budget_allocates_and_writes_nothing(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("nothing may be built or rendered for a run over its budget")

    monkeypatch.setattr(Trainer, "__init__", refuse)
    monkeypatch.setattr(targets, "render_text", refuse)
    runs = tmp_path / "runs"
    with pytest.raises(MemoryBudgetError) as info:
        Session.start(tiny(**{"model.hidden": "65536,65536"}), runs, "a", max_memory=40 * 10**9)
    assert info.value.field == "model.hidden" and "budget is 40.0 GB (max_memory)" in str(info.value)
    assert not runs.exists()


def test_start_takes_half_the_available_memory_by_default_and_max_memory_raises_it(tmp_path, monkeypatch):
    cfg = tiny(**{"model.hidden": "512,512"})
    needed = budget.estimate(cfg).total
    monkeypatch.setattr(memory, "available_memory", lambda: int(1.5 * needed))
    with pytest.raises(MemoryBudgetError, match=r"\(half the available memory\); lower model\.hidden or raise max_memory$"):
        Session.start(cfg, tmp_path, "a")
    assert list(tmp_path.iterdir()) == []
    with Session.start(cfg, tmp_path, "a", max_memory=needed) as session:
        assert session.trainer.cfg.model.hidden == (512, 512)


def test_resume_checks_the_budget_too(tmp_path):
    with Session.start(tiny(), tmp_path, "a"):
        pass
    with pytest.raises(MemoryBudgetError, match=r"budget is 1\.0 kB \(max_memory\)"):
        Session.resume(tmp_path / "a", max_memory=1000)
    assert not RunFolder(tmp_path / "a").held_elsewhere()
    with Session.resume(tmp_path / "a"):
        pass


def test_allocation_failure_while_starting_leaves_no_folder(tmp_path, monkeypatch):
    def out_of_memory(*args, **kwargs):
        raise RuntimeError(CPU_OOM)

    monkeypatch.setattr(training, "model_for", out_of_memory)
    with pytest.raises(AllocationError, match=r"^ran out of memory while starting the run \(\[enforce fail"):
        Session.start(tiny(), tmp_path, "a")
    assert list(tmp_path.iterdir()) == []


def test_allocation_failure_before_the_first_checkpoint_removes_the_new_folder(tmp_path, monkeypatch):
    def out_of_memory(self):
        raise MemoryError

    monkeypatch.setattr(Trainer, "evaluate", out_of_memory)  # the evaluation of step 0, before its checkpoint
    with Session.start(tiny(), tmp_path, "a") as session:
        assert session.path.is_dir()
        with pytest.raises(AllocationError, match=r"^ran out of memory while training \(step 0\) \(MemoryError\)") as info:
            session.run()
    assert info.value.fields  # what to lower
    assert list(tmp_path.iterdir()) == []


def test_allocation_failure_after_a_checkpoint_keeps_the_folder(tmp_path, monkeypatch):
    evaluate = Trainer.evaluate

    def out_of_memory_later(self):
        if self.step > 0:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return evaluate(self)

    monkeypatch.setattr(Trainer, "evaluate", out_of_memory_later)
    with Session.start(tiny(), tmp_path, "a") as session:
        with pytest.raises(AllocationError, match=r"while training \(step 20\) \(CUDA out of memory"):
            session.run()
    folder = RunFolder.open(tmp_path / "a")
    assert folder.has_checkpoint() and folder.checkpoint()["step"] == 0
    assert not folder.held_elsewhere()


def test_a_resumed_run_keeps_its_folder_whatever_fails(tmp_path, monkeypatch):
    with Session.start(tiny(), tmp_path, "a"):
        pass  # a folder without a checkpoint
    monkeypatch.setattr(Trainer, "evaluate", lambda self: (_ for _ in ()).throw(MemoryError()))
    with Session.resume(tmp_path / "a") as session:
        with pytest.raises(AllocationError):
            session.run()
    assert (tmp_path / "a" / "config.json").is_file()


def test_other_failures_in_training_pass_through_and_keep_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(Trainer, "evaluate", lambda self: (_ for _ in ()).throw(KeyError("a bug")))
    with Session.start(tiny(), tmp_path, "a") as session:
        with pytest.raises(KeyError):
            session.run()
    assert (tmp_path / "a").is_dir()


# -- resume --------------------------------------------------------------------------------


def test_interrupted_and_resumed_run_ends_with_the_same_weights(tmp_path, straight):
    def stop_at_20(event):
        if event.kind == "eval" and event.step == 20:
            event.trainer.request_stop()

    with Session.start(tiny(), tmp_path, "a") as first:
        result = first.run(stop_at_20)
    assert result.interrupted and result.step == 20
    folder = RunFolder.open(tmp_path / "a")
    assert folder.status() == "paused" and folder.checkpoint()["step"] == 20
    assert not (tmp_path / "a" / "final.png").exists()

    with Session.resume(tmp_path / "a") as second:
        assert second.trainer.step == 20
        assert [r["step"] for r in second.trainer.history] == [0, 20]
        second.run()
    assert_same_weights(second.trainer.model, straight.trainer.model)
    # Adam's moments too: the run can go on exactly as the uninterrupted one would.
    sa, sb = second.trainer.optimizer.state_dict()["state"], straight.trainer.optimizer.state_dict()["state"]
    assert sa.keys() == sb.keys()
    for index in sa:
        for name in ("step", "exp_avg", "exp_avg_sq"):
            assert torch.equal(sa[index][name], sb[index][name]), (index, name)
    assert without_time(folder.metrics()) == without_time(RunFolder.open(straight.path).metrics())
    for step in (0, 20, 40):
        assert np.array_equal(read_png(folder.frame_path(step)), read_png(RunFolder.open(straight.path).frame_path(step)))
    assert folder.status() == "done"


def test_resume_drops_what_was_recorded_after_the_checkpoint(tmp_path, straight):
    with Session.start(tiny(), tmp_path, "a") as first:
        first.run(until=20)
        first.checkpoint()
        first.run(until=30)  # a chunk: no checkpoint, but its records stay until resumed
        first.folder.append_metrics({"step": 999})
        first.folder.write_frame(999, np.zeros((16, 32), dtype=np.uint8))
    with Session.resume(tmp_path / "a") as second:
        assert second.trainer.step == 20
        assert [r["step"] for r in RunFolder.open(tmp_path / "a").metrics()] == [0, 20]
        assert second.folder.frame_steps() == [0, 20]
        second.run()
    assert_same_weights(second.trainer.model, straight.trainer.model)


def test_resume_a_folder_without_checkpoint_starts_at_step_0(tmp_path, straight):
    with Session.start(tiny(), tmp_path, "a") as first:
        # Something recorded without a checkpoint (a crash before the first one): dropped on resume.
        first.folder.append_metrics({"step": 0, "stale": True})
        first.folder.write_frame(0, np.zeros((16, 32), dtype=np.uint8))
    assert not RunFolder.open(tmp_path / "a").has_checkpoint()
    with Session.resume(tmp_path / "a") as session:
        assert session.trainer.step == 0 and session.trainer.history == []
        assert session.folder.metrics() == [] and session.folder.frame_steps() == []
        session.run()
    assert_same_weights(session.trainer.model, straight.trainer.model)
    assert without_time(session.folder.metrics()) == without_time(RunFolder.open(straight.path).metrics())


@pytest.mark.parametrize("key, value", [("model.hidden", "16"), ("optim.lr", "0.5"), ("seed", "3"),
                                        ("data.text", "B"), ("model.activation", "tanh")])
def test_resume_refuses_to_change_what_the_run_is(tmp_path, key, value):
    with Session.start(tiny(), tmp_path, "a"):
        pass
    with pytest.raises(RunFolderError) as info:
        Session.resume(tmp_path / "a", {key: value})
    assert info.value.field == key
    assert "schedule.steps" in str(info.value)
    assert not RunFolder(tmp_path / "a").held_elsewhere()


def test_resume_at_the_last_step_needs_more_steps(tmp_path, straight):
    import shutil

    shutil.copytree(straight.path, tmp_path / "done")
    with pytest.raises(RunFolderError) as info:
        Session.resume(tmp_path / "done")
    assert info.value.field == "schedule.steps"
    assert "already at step 40 of 40" in str(info.value)
    with pytest.raises(RunFolderError) as info:
        Session.resume(tmp_path / "done", {"schedule.steps": "30"})
    assert info.value.field == "schedule.steps"
    assert not RunFolder(tmp_path / "done").held_elsewhere()  # the refusal let go of the folder

    with Session.resume(tmp_path / "done", {"schedule.steps": "60"}) as session:
        session.run()
    folder = RunFolder.open(tmp_path / "done")
    assert [r["step"] for r in folder.metrics()] == [0, 20, 40, 60]
    assert folder.config().schedule.steps == 60 and folder.checkpoint()["step"] == 60
    assert folder.status() == "done"


def test_resume_with_an_edited_config_is_a_run_folder_error(tmp_path):
    with Session.start(tiny(), tmp_path, "a") as session:
        session.run(until=10)
        session.checkpoint()
    path = tmp_path / "a" / "config.json"
    path.write_text(tiny(**{"model.hidden": "8,8"}).to_json())
    with pytest.raises(RunFolderError) as info:
        Session.resume(tmp_path / "a")
    assert "was edited since its checkpoint" in str(info.value) and info.value.field == "model.hidden"
    assert "\n" not in str(info.value)
    path.write_text(tiny(**{"model.hidden": "12"}).to_json())
    with pytest.raises(RunFolderError, match="was edited since its checkpoint"):
        Session.resume(tmp_path / "a")
    # An edit the weights would still fit is refused all the same.
    path.write_text(tiny(**{"model.activation": "tanh"}).to_json())
    with pytest.raises(RunFolderError) as info:
        Session.resume(tmp_path / "a")
    assert info.value.field == "model.activation"
    assert not RunFolder(tmp_path / "a").held_elsewhere()


def test_resume_with_a_checkpoint_that_does_not_fit_its_own_config_is_a_run_folder_error(tmp_path):
    with Session.start(tiny(), tmp_path, "a") as session:
        session.run(until=10)
        session.checkpoint()
        state = session.folder.checkpoint()
        state["config"] = tiny(**{"model.hidden": "8,8"}).to_json()
        path = tmp_path / "a" / "config.json"
        session.folder.save_checkpoint(state)
    path.write_text(tiny(**{"model.hidden": "8,8"}).to_json())
    with pytest.raises(RunFolderError, match="does not fit its config.json"):
        Session.resume(tmp_path / "a")


def test_resume_with_a_corrupt_checkpoint_is_a_run_folder_error(tmp_path):
    with Session.start(tiny(), tmp_path, "a") as session:
        session.run(until=10)
    path = tmp_path / "a" / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RunFolderError, match="cannot be read") as info:
        Session.resume(tmp_path / "a")
    assert "\n" not in str(info.value)
    assert not RunFolder(tmp_path / "a").held_elsewhere()


def test_resume_refuses_a_busy_folder_and_a_missing_one(tmp_path):
    with Session.start(tiny(), tmp_path, "a"):
        with pytest.raises(RunBusyError):
            Session.resume(tmp_path / "a")
    with pytest.raises(RunFolderError, match="does not exist"):
        Session.resume(tmp_path / "nope")


def test_resumable_fields_say_how_long_and_where_never_what():
    from overfit.fields import describe_fields

    keys = {f.key for f in describe_fields()}
    assert {"schedule.steps", "device", "compile"} <= set(RESUMABLE) <= keys
    for key in RESUMABLE:
        assert not key.startswith(("model.", "encoding.", "data.", "optim.")) and key not in ("seed", "loss"), key


# -- callbacks and chunks -----------------------------------------------------------------------


def test_callbacks_receive_events_in_order_after_the_recorder(tmp_path):
    seen_a, seen_b, order = [], [], []

    def a(event):
        seen_a.append((event.kind, event.step))
        order.append("a")
        if event.kind == "eval":  # the recorder ran first: the record is on disk
            assert RunFolder(tmp_path / "s").metrics()[-1]["step"] == event.step

    def b(event):
        seen_b.append((event.kind, event.step))
        order.append("b")

    with Session.start(tiny(), tmp_path, "s") as session:
        session.run([a, b])
    expected = [("eval", 0), ("log", 10), ("log", 20), ("eval", 20), ("log", 30), ("log", 40), ("eval", 40), ("end", 40)]
    assert seen_a == expected and seen_b == expected
    assert order == ["a", "b"] * len(expected)


def test_a_single_callable_is_accepted(tmp_path):
    kinds = []
    with Session.start(tiny(**{"schedule.steps": 10}), tmp_path, "s") as session:
        session.run(lambda e: kinds.append(e.kind))
    assert kinds == ["eval", "log", "eval", "end"]


def test_a_chunk_writes_no_checkpoint_and_an_interrupt_does(tmp_path, straight):
    kinds = []
    with Session.start(tiny(), tmp_path, "s") as session:
        result = session.run(lambda e: kinds.append((e.kind, e.step)), until=10)
        assert result.interrupted and result.step == 10
        assert kinds[-1] == ("chunk", 10)
        assert session.folder.checkpoint()["step"] == 0  # only the step-0 evaluation's

        def stop_at_30(event):
            if event.kind == "log" and event.step == 30:
                event.trainer.request_stop()

        kinds.clear()
        session.run([lambda e: kinds.append((e.kind, e.step)), stop_at_30])
        assert kinds[-1] == ("interrupt", 30)
        assert session.folder.checkpoint()["step"] == 30
        session.run()
    assert_same_weights(session.trainer.model, straight.trainer.model)


def test_session_checkpoint_saves_the_current_state(tmp_path):
    with Session.start(tiny(), tmp_path, "s") as session:
        session.run(until=10)
        session.checkpoint()
        state = session.folder.checkpoint()
        assert state["step"] == 10
        for key, value in session.trainer.model.state_dict().items():
            assert torch.equal(state["model"][key], value)
        fresh = Trainer(session.trainer.cfg, session.trainer.target)
        fresh.load_state_dict(state)
        assert_same_weights(fresh.model, session.trainer.model)


def test_an_extended_run_keeps_its_learning_rate_schedule(tmp_path):
    cfg = tiny(**{"optim.lr_final": 1e-4, "schedule.log_every": 1})
    rates: dict[int, float] = {}

    def watch(event):
        if event.kind == "log":
            rates[event.step] = event.trainer.optimizer.param_groups[0]["lr"]

    with Session.start(cfg, tmp_path, "straight") as session:
        session.run(watch)
    before = dict(rates)
    assert before[1] == 1e-2 and math.isclose(before[40], 1e-4, rel_tol=1e-12)

    rates.clear()
    with Session.start(cfg, tmp_path, "extended") as session:
        session.run([watch, lambda e: e.trainer.request_stop() if e.kind == "log" and e.step == 20 else None])
    rates.clear()
    with Session.resume(tmp_path / "extended", {"schedule.steps": "60"}) as session:
        session.run(watch)
    assert sorted(rates) == list(range(21, 61))
    for step in range(21, 41):
        assert rates[step] == before[step], step
    for step in range(41, 61):
        assert math.isclose(rates[step], 1e-4, rel_tol=1e-12), step
    written = RunFolder.open(tmp_path / "extended").config()
    assert (written.schedule.steps, written.optim.lr_decay_steps) == (60, 40)
