"""Crash test: `overfit train` killed with SIGKILL at random points resumes to exactly the run that never stopped.

A real `overfit train` process on a tiny picture, with a checkpoint at every evaluation
(every 5 steps), is killed at seeded random points (mid-step, mid-frame, mid-checkpoint:
wherever the kill lands) and once more after its last checkpoint, before its final picture and
videos, then continued with `overfit train --resume` until it finishes.
Its final weights must equal those of an uninterrupted run of the same config, its
metrics must match record for record, and no file in its folder may be half-written.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import Hold, tiny_args
from PIL import Image

from overfit.files import TMP_MARK
from overfit.runs import CHECKPOINT, CONFIG, FINAL, GIF, METRICS, MP4, RunFolder

pytestmark = [pytest.mark.slow, pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")]

STEPS = 90
# The shared tiny run (tests/helpers.py) with two layers and an evaluation, so a checkpoint, every 5 steps.
RUN = [*tiny_args({"model.hidden": "8,8", "optim.lr": 3e-3, "schedule.steps": STEPS, "schedule.eval_every": 5,
                   "schedule.log_every": 5}), "-q"]
# Measured per run, so they differ between two runs of one config.
TIMINGS = ("train_seconds",)
SEED = 20261201
TIMEOUT = 120


def overfit(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**(os.environ if env is None else env), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "overfit.cli", "train", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def last_step(run: Path) -> int:
    records = RunFolder(run).metrics() if (run / METRICS).exists() else []  # a line cut short ends the list
    return records[-1]["step"] if records else -1


def checkpoint_step(run: Path) -> int:
    """The step of the run's checkpoint, -1 if it has none yet (it is written whole or not at all)."""
    if not (run / CHECKPOINT).exists():
        return -1
    return int(torch.load(run / CHECKPOINT, map_location="cpu", weights_only=True)["step"])


def kill_after(proc: subprocess.Popen, run: Path, step: int, delay: float) -> bool:
    """SIGKILL `proc` `delay` seconds after `run` has recorded `step`; False if it ended first."""
    deadline = time.monotonic() + TIMEOUT
    while last_step(run) < step:
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=TIMEOUT)
    return proc.returncode == -signal.SIGKILL


def finish(proc: subprocess.Popen) -> None:
    out, _ = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, out
    assert "Traceback" not in out, out


def assert_whole(run: Path, finished: bool) -> None:
    """Every file of the run reads completely: config, checkpoint and pictures always; metrics lines and no temporaries once finished."""
    RunFolder(run).config()
    if (run / CHECKPOINT).exists():
        RunFolder(run).checkpoint()
    for png in [*run.glob("*.png"), *run.glob("frames/*.png")]:
        if TMP_MARK not in png.name:
            with Image.open(png) as img:
                img.load()
    if finished:
        for line in (run / METRICS).read_text().splitlines():
            assert isinstance(json.loads(line), dict), line
        json.loads((run / CONFIG).read_text())
        with Image.open(run / GIF) as gif:
            gif.seek(gif.n_frames - 1)
            gif.load()
        assert (run / MP4).stat().st_size > 0 and (run / FINAL).is_file()
        stray = [p.relative_to(run) for p in run.rglob("*") if TMP_MARK in p.name]
        assert not stray, stray


def same_records(ours: list[dict], theirs: list[dict]) -> None:
    """Record for record the same numbers, timings aside (and keys only one side has: a checkout edited mid-test)."""
    assert [r["step"] for r in ours] == [r["step"] for r in theirs]
    for a, b in zip(ours, theirs):
        keys = (a.keys() & b.keys()) - set(TIMINGS)
        assert {k: a[k] for k in keys} == {k: b[k] for k in keys}, a["step"]


def test_a_run_killed_at_random_points_and_before_its_videos_resumes_to_the_weights_of_a_run_never_stopped(tmp_path):
    straight = overfit(*RUN, "--runs-dir", str(tmp_path), "--name", "straight")  # alongside the killed one
    rng = random.Random(SEED)
    run = tmp_path / "killed"
    # One kill in each third of the run, so records written after a checkpoint never reach the next kill's step.
    kill_steps = [rng.randrange(lo, lo + 20, 5) for lo in (5, 35, 65)]  # 15 steps or more apart
    proc = overfit(*RUN, "--runs-dir", str(tmp_path), "--name", "killed")
    # After the last of those kills, one after its last checkpoint, before final.png and the videos: the run holds at
    # its end (tests/run_hold), so the kill lands there however fast this machine draws them.
    with Hold(tmp_path / "hold", at_step="end") as hold:
        for step in kill_steps:
            assert kill_after(proc, run, step, rng.uniform(0.0, 0.01)), proc.communicate()[0]
            assert_whole(run, finished=False)
            proc = overfit("--resume", str(run), "-q", env=hold.env(os.environ))
        assert hold.held(proc, timeout=TIMEOUT) == (run, STEPS)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
    assert checkpoint_step(run) == STEPS and not (run / MP4).exists() and not (run / FINAL).exists()
    assert_whole(run, finished=False)
    finish(overfit("--resume", str(run), "-q"))
    finish(straight)

    assert_whole(run, finished=True)
    ours, theirs = RunFolder(run).checkpoint(), RunFolder(tmp_path / "straight").checkpoint()
    assert ours["step"] == theirs["step"] == STEPS
    assert ours["model"].keys() == theirs["model"].keys()
    for key in ours["model"]:
        assert torch.equal(ours["model"][key], theirs["model"][key]), key
    same_records(RunFolder(run).metrics(), RunFolder(tmp_path / "straight").metrics())
    assert RunFolder(run).frame_steps() == list(range(0, STEPS + 1, 5))
