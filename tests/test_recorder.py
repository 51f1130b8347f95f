"""Tests for overfit.recorder: what each training event writes into a run folder."""

from __future__ import annotations

import json

import imageio_ffmpeg
import numpy as np
import pytest
import torch
from helpers import tiny_config
from PIL import Image

from overfit.config import RunConfig
from overfit.images import read_png, to_uint8
from overfit.recorder import Recorder
from overfit.runs import RunFolder
from overfit.training import Event, Trainer
from overfit.video import held_frames

@pytest.fixture
def folder(tmp_path):
    f = RunFolder.create(tmp_path, "run", "relu_1")
    yield f
    f.unlock()


@pytest.fixture
def no_media(monkeypatch):
    """Skip final.png and the videos where a test is about something else (they cost most of a tiny run)."""
    from overfit import plots, video

    monkeypatch.setattr(plots, "save_final_plot", lambda *args, **kwargs: None)
    monkeypatch.setattr(video, "write_progress", lambda *args, **kwargs: None)


def names(folder: RunFolder) -> list[str]:
    return sorted(p.name for p in folder.path.iterdir() if p.name != ".lock")


def test_start_writes_config_target_and_samples(folder):
    trainer = Trainer(tiny_config())
    Recorder(folder).start(trainer)
    assert names(folder) == ["config.json", "samples.png", "target.png"]
    assert RunConfig.from_json((folder.path / "config.json").read_text()) == trainer.cfg
    assert np.array_equal(read_png(folder.path / "target.png"), trainer.target.image)
    with Image.open(folder.path / "samples.png") as img:
        assert img.format == "PNG" and img.width > 100 and img.height > 50


def test_events_write_what_they_should(folder):
    trainer = Trainer(tiny_config())
    recorder = Recorder(folder)
    record = {"step": 0, "dense_acc": 0.5}
    prediction = np.linspace(0, 1, 16 * 32, dtype=np.float32).reshape(16, 32)

    for kind in ("log", "chunk"):
        recorder(Event(kind, 0, {"step": 0, "loss": 1.0}, trainer))
    assert names(folder) == []  # "log" and "chunk" write nothing

    recorder(Event("eval", 0, record, trainer, prediction))
    assert names(folder) == ["checkpoint.pt", "frames", "metrics.jsonl", "weights"]
    assert folder.metrics() == [record] and folder.weight_steps() == [0]
    for key, value in trainer.model.state_dict().items():  # stored in half precision
        assert torch.equal(folder.read_weights(0)[key], value.half().float() if value.is_floating_point() else value), key
    assert np.array_equal(read_png(folder.frame_path(0)), to_uint8(prediction))
    assert folder.checkpoint()["step"] == 0

    trainer.step = 7  # as if it had trained on
    with torch.no_grad():
        next(trainer.model.parameters()).add_(1.0)
    recorder(Event("interrupt", 7, record, trainer))
    state = folder.checkpoint()
    assert state["step"] == 7
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(state["model"][key], value), key
    assert folder.metrics() == [record] and folder.frame_steps() == [0]


def test_a_run_records_metrics_frames_checkpoint_and_final_media(folder):
    trainer = Trainer(tiny_config())
    recorder = Recorder(folder)
    recorder.start(trainer)
    result = trainer.run([recorder])
    assert names(folder) == ["checkpoint.pt", "config.json", "final.png", "frames", "metrics.jsonl",
                             "progress.gif", "progress.mp4", "samples.png", "target.png", "weights"]
    records = folder.metrics()
    assert [r["step"] for r in records] == [0, 20, 40]
    assert json.loads(json.dumps(result.history)) == records
    assert folder.frame_steps() == [0, 20, 40]
    for step, frame in folder.read_frames([0, 20, 40]):
        assert frame.shape == (16, 32) and frame.dtype == np.uint8
    state = folder.checkpoint()
    assert state["step"] == 40
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(state["model"][key], value), key
    nframes, _ = imageio_ffmpeg.count_frames_and_secs(str(folder.path / "progress.mp4"))
    assert nframes == 3 + held_frames(8)
    with Image.open(folder.path / "progress.gif") as gif:
        assert 1 <= gif.n_frames <= 3
    with Image.open(folder.path / "final.png") as img:
        assert img.format == "PNG"


def test_the_last_frame_is_the_final_prediction(folder, no_media):
    seen = []
    trainer = Trainer(tiny_config())
    trainer.run([Recorder(folder), lambda e: seen.append(e.prediction) if e.kind == "eval" else None])
    assert np.array_equal(read_png(folder.frame_path(40)), to_uint8(seen[-1]))


def test_an_rgb_run_records_colour_frames(folder, monkeypatch):
    from overfit import video

    written = []
    def progress(frames, captions, *paths, meanwhile=None):
        written.append((frames, captions))
        meanwhile()

    monkeypatch.setattr(video, "write_progress", progress)
    trainer = Trainer(tiny_config(**{"data.mode": "rgb", "schedule.steps": 20}))
    recorder = Recorder(folder)
    recorder.start(trainer)
    trainer.run([recorder])
    [(frames, captions)] = written
    assert [f.shape for f in frames] == [(16, 32, 3)] * 2
    assert captions[-1].startswith("relu_1   step 20   PSNR ") and captions[-1].endswith(" dB")
    assert read_png(folder.path / "target.png").shape == (16, 32, 3)
    assert [s for s, _ in folder.read_frames([0, 20])] == [0, 20]
    for _, frame in folder.read_frames([0, 20]):
        assert frame.shape == (16, 32, 3)
    assert set(folder.metrics()[-1]) >= {"dense_psnr", "dense_ssim"}
    assert (folder.path / "final.png").is_file()


def test_finish_without_frames_writes_nothing(folder):
    trainer = Trainer(tiny_config())
    Recorder(folder)(Event("end", 40, {}, trainer))
    assert names(folder) == []



def _finish_peak(tmp_path, name: str, count: int, trainer: Trainer) -> int:
    """Peak traced memory of `Recorder.finish` over `count` 32 x 64 frames on disk."""
    import tracemalloc

    folder = RunFolder.create(tmp_path, name, "relu_1")
    try:
        rng = np.random.default_rng(0)
        for i in range(count):
            folder.append_metrics({"step": 10 * i, "dense_acc": 0.5})
            folder.write_frame(10 * i, rng.integers(0, 256, size=(32, 64), dtype=np.uint8))
        tracemalloc.start()
        try:
            Recorder(folder).finish(trainer)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert imageio_ffmpeg.count_frames_and_secs(str(folder.path / "progress.mp4"))[0] == count + held_frames(8)
        return peak
    finally:
        folder.unlock()


def test_finish_memory_does_not_grow_with_the_number_of_frames(tmp_path, monkeypatch):
    # Frames are read from disk as the writers take them: ten times the frames, about the same peak.
    # Holding them all would take 90 x (2 KB read + 11 KB captioned) = 1.2 MB more. The GIF holds
    # its (small) frames, up to GIF_MAX_FRAMES: 5 here, so both runs hold as many.
    from overfit import plots, video

    monkeypatch.setattr(plots, "save_final_plot", lambda *args, **kwargs: None)
    monkeypatch.setattr(video, "GIF_MAX_FRAMES", 5, raising=False)
    trainer = Trainer(tiny_config())
    _finish_peak(tmp_path, "warm", 2, trainer)  # first use: imports, fonts
    few = _finish_peak(tmp_path, "few", 10, trainer)
    many = _finish_peak(tmp_path, "many", 100, trainer)
    assert many < few + 300_000, (few, many)


def test_weights_are_kept_at_an_even_spread_of_evaluations_and_the_last(monkeypatch):
    from overfit import recorder as recorder_module

    trainer = Trainer(tiny_config().with_overrides({"schedule.steps": "100", "schedule.eval_every": "10"}))  # 11 evaluations
    monkeypatch.setattr(recorder_module, "WEIGHT_SNAPSHOTS", 4)
    kept = [i * 10 for i in range(11) if recorder_module.keeps_weights(trainer, i, i * 10)]
    assert kept == [0, 30, 60, 90, 100]
    monkeypatch.setattr(recorder_module, "SNAPSHOT_PARAMS", 10)  # a model too large to keep any
    assert not any(recorder_module.keeps_weights(trainer, i, i * 10) for i in range(11))
