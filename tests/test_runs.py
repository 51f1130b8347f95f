"""Tests for overfit.runs: creating, opening and locking run folders, and reading and rewinding what they hold."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch

import helpers
from overfit import runs
from overfit.config import RunConfig
from overfit.endings import Ending
from overfit.errors import RunBusyError, RunExistsError, RunFolderError
from overfit.images import read_png
from overfit.runs import CHECKPOINT_FORMAT, CHECKPOINT_KEYS, RunFolder


def tiny_config(steps: int = 40) -> RunConfig:
    """The shared tiny run on an even smaller picture: these tests write folders, they do not train."""
    return helpers.tiny_config({"data.width": 8, "data.height": 6, "model.hidden": "4", "schedule.steps": steps})


def valid_state(step: int = 20) -> dict:
    return {
        "format": CHECKPOINT_FORMAT, "config": tiny_config().to_json(), "step": step, "train_seconds": 1.5,
        "model": {"w": torch.arange(6.0).reshape(2, 3)}, "optimizer": {"state": {}, "param_groups": []},
    }


@pytest.fixture
def folder(tmp_path):
    f = RunFolder.create(tmp_path, "run", "relu_1")
    f.write_config(tiny_config())
    yield f
    f.unlock()


# -- create -------------------------------------------------------------------------------


def test_create_makes_a_new_locked_folder_with_the_given_name(tmp_path):
    with RunFolder.create(tmp_path / "runs", "first", "relu_1") as f:
        assert f.path == tmp_path / "runs" / "first" and f.path.is_dir()
        assert f.locked
        assert sorted(p.name for p in f.path.iterdir()) == [".lock"]
    assert not f.locked


def test_create_refuses_an_existing_explicit_name(tmp_path):
    RunFolder.create(tmp_path, "taken", "relu_1").unlock()
    (tmp_path / "taken" / "config.json").write_text("{}")
    with pytest.raises(RunExistsError) as info:
        RunFolder.create(tmp_path, "taken", "relu_1")
    assert info.value.field == "name"
    assert info.value.path == str(tmp_path / "taken")
    assert "already exists" in str(info.value)
    # Nothing in the existing folder was touched.
    assert (tmp_path / "taken" / "config.json").read_text() == "{}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_auto_names_are_preset_and_time(tmp_path):
    with RunFolder.create(tmp_path, None, "cos_3") as f:
        assert re.fullmatch(r"cos_3-\d{8}-\d{6}", f.path.name), f.path.name


def test_auto_names_that_clash_get_numbered_suffixes(tmp_path, monkeypatch):
    monkeypatch.setattr(runs, "auto_name", lambda preset: f"{preset}-same")
    made = [RunFolder.create(tmp_path, None, "relu_1") for _ in range(3)]
    assert [f.path.name for f in made] == ["relu_1-same", "relu_1-same-2", "relu_1-same-3"]
    for f in made:
        f.unlock()


@pytest.mark.parametrize("preset", ["../escaped", "a/b", "my run", "..", "-x", "_", "é", "x" * 500, "/abs/path"])
def test_auto_names_from_any_preset_are_plain_names_inside_runs_dir(tmp_path, preset):
    runs_dir = tmp_path / "runs"
    with RunFolder.create(runs_dir, None, preset) as f:
        assert f.path.parent == runs_dir and f.path.resolve().parent == runs_dir.resolve()
        assert runs.NAME_PATTERN.match(f.path.name), f.path.name
        assert len(f.path.name) < 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_auto_name_keeps_a_plain_preset():
    assert re.fullmatch(r"relu_1-\d{8}-\d{6}", runs.auto_name("relu_1"))
    assert re.fullmatch(r"run-\d{8}-\d{6}", runs.auto_name("../"))
    assert re.fullmatch(r"my_run-\d{8}-\d{6}", runs.auto_name("my run"))


@pytest.mark.parametrize("name", ["", ".hidden", "../escape", "a/b", "a b", "-dash", "x\\y"])
def test_create_refuses_names_that_are_not_plain(tmp_path, name):
    with pytest.raises(RunFolderError) as info:
        RunFolder.create(tmp_path / "runs", name, "relu_1")
    assert info.value.field == "name"
    assert not (tmp_path / "runs").exists()  # refused before anything is made


def test_create_refuses_a_runs_dir_that_is_a_file(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(RunFolderError) as info:
        RunFolder.create(tmp_path / "runs", "a", "relu_1")
    assert info.value.field == "runs_dir"
    assert "\n" not in str(info.value)


# -- open ----------------------------------------------------------------------------------


def test_open_an_existing_run_folder(folder):
    opened = RunFolder.open(folder.path)
    assert opened.path == folder.path and not opened.locked
    assert opened.config() == tiny_config()


@pytest.mark.parametrize("kind, words", [
    ("missing", "does not exist"),
    ("file", "not a directory"),
    ("empty", "has no config.json"),
])
def test_open_refuses_what_is_not_a_run_folder(tmp_path, kind, words):
    path = tmp_path / "x"
    if kind == "file":
        path.write_text("hello")
    elif kind == "empty":
        path.mkdir()
    with pytest.raises(RunFolderError, match=words) as info:
        RunFolder.open(path)
    assert str(path) in str(info.value)


def test_a_broken_config_json_is_a_run_folder_error(folder):
    (folder.path / "config.json").write_text('{"model": {"hidden": "wide"}}')
    with pytest.raises(RunFolderError, match="model.hidden: expected list of int") as info:
        folder.config()
    assert str(folder.path / "config.json") in str(info.value)
    (folder.path / "config.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(RunFolderError, match="cannot read"):
        folder.config()


# -- the lock --------------------------------------------------------------------------------


def test_a_second_run_folder_on_the_same_path_is_refused_while_locked(folder):
    other = RunFolder(folder.path)
    assert other.held_elsewhere()
    assert not folder.held_elsewhere()  # the holder itself
    with pytest.raises(RunBusyError, match="in use by another overfit process"):
        other.lock()
    assert not other.locked
    folder.unlock()
    assert not other.held_elsewhere()
    other.lock()
    assert other.locked and folder.held_elsewhere()
    with pytest.raises(RunBusyError):
        folder.lock()
    other.unlock()


def _probe_held(path):
    """What another process's probe holds for an instant: a shared flock on the lock file (`safefiles.lock_taken`)."""
    import fcntl
    import os

    fd = os.open(path / ".lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    return fd


def test_a_probe_neither_sees_another_probe_as_a_holder_nor_makes_a_locker_fail(tmp_path):
    import os
    import threading

    pytest.importorskip("fcntl")
    folder = RunFolder.create(tmp_path, "free", "relu_1")
    folder.unlock()
    fd = _probe_held(folder.path)  # another process is probing right now
    try:
        assert not RunFolder(folder.path).held_elsewhere()  # a probe is no holder
        threading.Timer(0.05, os.close, (fd,)).start()  # the probe lets go
        folder.lock()  # waits the probe out instead of refusing: `overfit train --resume` beside a polling lab
        assert folder.locked and RunFolder(folder.path).held_elsewhere()
    finally:
        folder.unlock()


def test_a_lock_file_that_is_a_link_is_refused_and_its_target_kept(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    folder = RunFolder.create(tmp_path, "run", "relu_1")
    folder.unlock()
    (folder.path / ".lock").unlink()
    (folder.path / ".lock").symlink_to(outside)
    with pytest.raises(RunFolderError, match=r"\.lock is a symbolic link"):
        folder.lock()
    assert outside.read_text() == "keep me" and not folder.held_elsewhere()


def test_lock_twice_in_the_same_object_is_harmless(folder):
    folder.lock()
    assert folder.locked
    folder.unlock()
    folder.unlock()
    assert not folder.locked


def test_held_elsewhere_is_false_without_a_lock_file(tmp_path):
    (tmp_path / "r").mkdir()
    assert not RunFolder(tmp_path / "r").held_elsewhere()


def test_lock_sweeps_stale_temporaries_and_keeps_real_files(folder):
    folder.write_frame(1, np.zeros((6, 8), dtype=np.uint8))
    folder.unlock()
    stale = [folder.path / ".checkpoint.pt.a1b2c3.tmp", folder.path / ".metrics.jsonl.zz.tmp.jsonl",
             folder.path / "frames" / ".00000001.png.x9y.tmp.png"]
    for p in stale:
        p.write_bytes(b"half a file")
    kept = [folder.path / "config.json", folder.path / "frames" / "00000001.png", folder.path / ".lock"]
    (folder.path / "notes.tmp").write_text("a user's file, not ours")
    folder.lock()
    for p in stale:
        assert not p.exists(), p.name
    for p in kept:
        assert p.exists(), p.name
    assert (folder.path / "notes.tmp").exists()


# -- metrics, frames, rewind ------------------------------------------------------------------


def test_metrics_stop_at_a_truncated_last_line(folder):
    assert folder.metrics() == []
    for step in (0, 20):
        folder.append_metrics({"step": step, "dense_acc": step / 100})
    with open(folder.path / "metrics.jsonl", "a") as f:
        f.write('\n{"step": 40, "dense_a')  # a crash mid-write (and a blank line before it)
    assert folder.metrics() == [{"step": 0, "dense_acc": 0.0}, {"step": 20, "dense_acc": 0.2}]


def test_frames_round_trip_and_are_listed_by_step(folder):
    pictures = {step: np.full((6, 8), step, dtype=np.uint8) for step in (40, 0, 20)}
    for step, picture in pictures.items():
        folder.write_frame(step, picture)
    assert folder.frame_path(20) == folder.path / "frames" / "00000020.png"
    assert folder.frame_steps() == [0, 20, 40]
    got = folder.read_frames([0, 20, 30, 40])
    assert [s for s, _ in got] == [0, 20, 40]
    for step, picture in got:
        assert picture.dtype == np.uint8 and np.array_equal(picture, pictures[step])


def test_rewind_drops_later_records_and_frames(folder):
    for step in (0, 20, 40, 60):
        folder.append_metrics({"step": step})
        folder.write_frame(step, np.zeros((6, 8), dtype=np.uint8))
    kept = folder.rewind(20)
    assert kept == [{"step": 0}, {"step": 20}]
    assert folder.metrics() == kept
    assert folder.frame_steps() == [0, 20]
    assert folder.rewind(-1) == [] and folder.metrics() == [] and folder.frame_steps() == []


def test_rewind_removes_a_truncated_tail_so_appending_continues_cleanly(folder):
    folder.append_metrics({"step": 0})
    with open(folder.path / "metrics.jsonl", "a") as f:
        f.write('{"step": 2')
    folder.rewind(0)
    folder.append_metrics({"step": 20})
    assert folder.metrics() == [{"step": 0}, {"step": 20}]


# -- checkpoints -------------------------------------------------------------------------------


def test_checkpoint_round_trip(folder):
    assert not folder.has_checkpoint()
    folder.save_checkpoint(valid_state(20))
    assert folder.has_checkpoint()
    state = folder.checkpoint()
    assert set(state) == set(CHECKPOINT_KEYS)
    assert state["step"] == 20 and state["train_seconds"] == 1.5
    assert torch.equal(state["model"]["w"], torch.arange(6.0).reshape(2, 3))


def test_checkpoint_missing(folder):
    with pytest.raises(RunFolderError, match="has no checkpoint.pt; nothing to resume"):
        folder.checkpoint()


@pytest.mark.parametrize("key", CHECKPOINT_KEYS[1:])
def test_checkpoint_missing_a_key(folder, key):
    state = valid_state()
    del state[key]
    folder.save_checkpoint(state)
    with pytest.raises(RunFolderError, match=f"lacks {key}; it cannot be resumed"):
        folder.checkpoint()


@pytest.mark.parametrize("content", [{"model": {}}, [1, 2, 3], {"format": "someone-elses-1"}, torch.zeros(3)])
def test_checkpoint_that_is_not_ours(folder, content):
    torch.save(content, folder.path / "checkpoint.pt")
    with pytest.raises(RunFolderError, match="is not an overfit checkpoint"):
        folder.checkpoint()


def _corrupt(folder, how: str) -> None:
    path = folder.path / "checkpoint.pt"
    if how == "text":
        path.write_text("this is not a checkpoint\n" * 5)
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        folder.save_checkpoint(valid_state())
        path.write_bytes(path.read_bytes()[:300])
    elif how == "flipped":
        folder.save_checkpoint(valid_state())
        data = bytearray(path.read_bytes())
        for i in range(0, len(data), 7):
            data[i] ^= 0xFF
        path.write_bytes(bytes(data))
    elif how == "pickle":  # a pickle with an arbitrary object: refused, never executed
        import pickle

        path.write_bytes(pickle.dumps({"format": CHECKPOINT_FORMAT, "x": _Hostile()}, protocol=2))


class _Hostile:
    def __reduce__(self):
        return (print, ("unpickled!",))


@pytest.mark.parametrize("how", ["text", "empty", "truncated", "flipped", "pickle"])
def test_corrupt_checkpoint_is_a_one_line_run_folder_error(folder, how, capsys):
    _corrupt(folder, how)
    with pytest.raises(RunFolderError) as info:
        folder.checkpoint()
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"checkpoint {folder.path / 'checkpoint.pt'} ")
    assert "unpickled!" not in capsys.readouterr().out


# -- status -------------------------------------------------------------------------------------


def test_status_new_paused_done(folder):
    assert folder.status() == "new"
    folder.append_metrics({"step": 0})
    assert folder.status() == "new"  # records but no checkpoint: nothing to continue from
    folder.save_checkpoint(valid_state(20))
    folder.append_metrics({"step": 20})
    assert folder.status() == "paused"
    folder.append_metrics({"step": 40})
    assert folder.status() == "paused" and not folder.finished()  # at its last step, but its end was never recorded
    folder.write_ending(Ending("finished", 40, "trained all 40 steps"))
    assert folder.status() == "done" and folder.finished() and folder.finished(40) and not folder.finished(60)
    folder.write_config(tiny_config(steps=60))
    assert folder.status() == "paused" and not folder.finished()  # extended: more to train


def test_a_run_at_its_last_step_with_its_videos_finished_before_endings_were_recorded(folder):
    folder.save_checkpoint(valid_state(40))
    folder.append_metrics({"step": 40})
    for name in ("final.png", "progress.mp4"):
        (folder.path / name).write_bytes(b"x")
    assert not folder.finished()  # the GIF is missing: stopped while writing the videos
    (folder.path / "progress.gif").write_bytes(b"x")
    assert folder.finished() and folder.ending() == Ending("finished", 40, "trained all 40 steps")


@pytest.mark.parametrize("how, done", [("stopped", True), ("diverged", False), ("failed", False), ("interrupted", False)])
def test_only_a_run_stopped_early_on_purpose_is_done_before_its_last_step(folder, how, done):
    folder.save_checkpoint(valid_state(20))
    folder.append_metrics({"step": 20})
    folder.write_ending(Ending(how, 20, "why"))
    assert folder.finished() is done and folder.finished(10_000) is done
    assert folder.status() == ("done" if done else "failed" if how in ("diverged", "failed") else "paused")


def test_older_run_folders_records_of_their_end_are_read(folder):
    folder.append_metrics({"step": 20})
    (folder.path / "diverged.json").write_text(json.dumps({"step": 20, "value": "nan"}))
    assert folder.ending() == Ending("diverged", 20, "training diverged at step 20 (the loss became nan)")
    folder.clear_ending()
    (folder.path / "stopped.json").write_text(json.dumps({"step": 20, "reason": "reached 99%"}))
    assert folder.ending() == Ending("stopped", 20, "reached 99%") and folder.finished()
    folder.clear_ending()
    assert folder.ending() is None and not (folder.path / "stopped.json").exists()


def test_status_with_an_unreadable_config(folder):
    folder.save_checkpoint(valid_state(20))
    (folder.path / "config.json").write_text("{")
    assert folder.status() == "paused"


# -- config and target -------------------------------------------------------------------------


def test_config_and_target_pictures_round_trip(folder):
    assert json.loads((folder.path / "config.json").read_text()) == tiny_config().to_dict()
    gray = np.array([[0, 255, 200, 10], [128, 129, 255, 0]], dtype=np.uint8)
    folder.write_picture("target.png", gray)
    assert np.array_equal(read_png(folder.path / "target.png"), gray)
    assert folder.target_size() == (2, 4)
    target = folder.target()
    assert np.array_equal(target.gray, gray)
    assert target.labels.tolist() == [[0, 1, 1, 0], [0, 1, 1, 0]]
    assert target.source == "text 'A'" and target.mode == "binary"


def test_target_size_of_a_missing_picture_is_zero(folder):
    assert folder.target_size() == (0, 0)
    with pytest.raises(RunFolderError, match="cannot read the run's target picture"):
        folder.target()


def test_a_recorded_error_makes_a_run_failed_until_it_trains_past_it(tmp_path):
    folder = RunFolder.create(tmp_path, "r", "p")
    folder.write_config(tiny_config(steps=1000))
    folder.append_metrics({"step": 100})
    assert folder.status() == "new" and folder.error() is None
    folder.write_ending(Ending("diverged", 150, "training diverged: loss is nan at step 150"))
    assert json.loads((folder.path / "ending.json").read_text()) == {"how": "diverged", "step": 150,
                                                                     "reason": "training diverged: loss is nan at step 150"}
    assert folder.status() == "failed" and folder.error() == {"error": "training diverged: loss is nan at step 150", "step": 150}
    folder.append_metrics({"step": 200})  # resumed from step 100 by another version, and trained on
    assert folder.error() is None and folder.status() == "new"
    folder.clear_ending()
    folder.clear_ending()  # nothing left to clear: fine
    assert not (folder.path / "ending.json").exists()
    (folder.path / "ending.json").write_text("{not json")  # a damaged record is no error
    assert folder.error() is None and folder.ending() is None
    (folder.path / "ending.json").write_text(json.dumps({"how": "exploded", "step": 1, "reason": "?"}))  # nor an unknown one
    assert folder.ending() is None
    folder.unlock()


def test_probes_of_a_free_folder_from_many_threads_never_see_it_taken(tmp_path):
    import threading

    from overfit.runs import RunFolder

    folder = RunFolder.create(tmp_path, "free", "relu_1")
    folder.unlock()
    seen: list[bool] = []
    barrier = threading.Barrier(8)

    def probe() -> None:
        barrier.wait()
        seen.extend(RunFolder(folder.path).held_elsewhere() for _ in range(200))

    threads = [threading.Thread(target=probe) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 1600 and not any(seen)


def test_a_checkpoint_of_an_older_version_is_read_for_its_model_but_never_resumed(folder):
    # Older versions drew batches from a generator's saved state; batches are now a function of (seed, step).
    old = {**valid_state(20), "format": "overfit-checkpoint-1",
           "train_gen": torch.Generator().get_state(), "eval_gen": torch.Generator().get_state()}
    folder.save_checkpoint(old)
    assert torch.equal(folder.checkpoint(resume=False)["model"]["w"], torch.arange(6.0).reshape(2, 3))
    with pytest.raises(RunFolderError, match="older overfit.*cannot continue exactly") as info:
        folder.checkpoint()
    assert "\n" not in str(info.value)


def test_a_torch_older_than_2_10_never_loads_a_checkpoint(folder, monkeypatch):
    # weights_only loading runs code from a crafted file below torch 2.6 and corrupts memory below 2.10.
    folder.save_checkpoint(valid_state(20))
    loads = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a) or valid_state(20))
    for old in ("2.5.1", "2.9.1+cpu"):
        monkeypatch.setattr(torch, "__version__", old)
        with pytest.raises(RunFolderError, match=rf"torch {re.escape(old)} loads a crafted checkpoint unsafely.*torch>=2\.10"):
            folder.checkpoint(resume=False)
    assert loads == []  # refused before the file is opened
    monkeypatch.setattr(torch, "__version__", "2.10.0")
    folder.checkpoint(resume=False)
    assert len(loads) == 1


@pytest.mark.parametrize("name", ["x\n", "run\n", "a\r", "²"])
def test_a_name_with_a_final_newline_or_a_non_ascii_digit_is_refused(tmp_path, name):
    # `$` matches before a final newline, so "x\n" passed the pattern and reached headers and paths.
    with pytest.raises(RunFolderError, match="is not a plain folder name"):
        RunFolder.create(tmp_path, name, "relu_1")
    assert not any(tmp_path.iterdir())


def test_files_named_by_other_digits_are_not_steps(folder):
    # "²".isdigit() is True and int("²") raises: such a file broke every listing of the folder's steps.
    (folder.path / "frames").mkdir(exist_ok=True)
    (folder.path / "weights").mkdir(exist_ok=True)
    for name in ("00000000.png", "00000020.png", "².png", "١٢.png", "12\n.png"):
        (folder.path / "frames" / name).write_bytes(b"")
    for name in ("00000020.safetensors", "³.safetensors"):
        (folder.path / "weights" / name).write_bytes(b"")
    assert folder.frame_steps() == [0, 20]
    assert folder.weight_steps() == [20]


def test_a_run_folders_files_are_its_own_in_any_case(folder):
    # On a case-insensitive file system `-o runs/X/Target.png --force` would replace target.png.
    for name in ("Target.png", "CONFIG.JSON", "Checkpoint.pt", "FRAMES/00000000.png", "Weights/x.safetensors",
                 "tensorboard/events.out.tfevents.1.host"):
        assert runs.is_run_file(folder.path / name), name
    assert not runs.is_run_file(folder.path / "Target-copy.png")
