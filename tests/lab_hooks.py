"""Hooks the lab's training processes run before they train (`RunManager.setup`), for tests that reach inside them.

A lab run trains in a process of its own, so a test cannot patch its trainer from the test's
process. It hands the manager one of these instead (a `functools.partial` over a folder, which
the process imports by name): the hook patches the process's own classes, and talks to the test
through files in that folder ("entered" when it got there, "release" to let it go on).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

# A guard against a hang, not a speed limit: a hook waiting for "release" gives up after this.
WAIT_SECONDS = 60


def _wait_for_release(gate: Path) -> None:
    (gate / "entered").touch()
    deadline = time.monotonic() + WAIT_SECONDS
    while not (gate / "release").exists():
        assert time.monotonic() < deadline, "the test never released the training process"
        time.sleep(0.01)


def hold_first_step(gate: str) -> None:
    """The run's first step waits for the test's "release" (a model that takes long to step)."""
    from overfit.stacked import StackedTrainer

    real_step = StackedTrainer.step

    def step(self, active=None):
        if self.trainers[0].step == 0:
            _wait_for_release(Path(gate))
        return real_step(self, active)

    StackedTrainer.step = step


def hold_resume(gate: str) -> None:
    """Opening the run waits for the test's "release"; each opening adds a line to "resumes"."""
    from overfit.session import Session

    real_resume = Session.resume.__func__

    def resume(cls, *args, **kwargs):
        with open(Path(gate) / "resumes", "a") as f:
            f.write("resume\n")
        _wait_for_release(Path(gate))
        return real_resume(cls, *args, **kwargs)

    Session.resume = classmethod(resume)


def diverge() -> None:
    """Every evaluation's dense loss is NaN: the run diverges at its first evaluation."""
    from overfit.training import Trainer

    real_evaluate = Trainer.evaluate

    def evaluate(self):
        record, prob = real_evaluate(self)
        return {**record, "dense_loss": math.nan}, prob

    Trainer.evaluate = evaluate


def record_threads(gate: str) -> None:
    """Each step appends the number of threads torch uses to "threads" (one per line)."""
    import torch

    from overfit.stacked import StackedTrainer

    real_step = StackedTrainer.step

    def step(self, active=None):
        with open(Path(gate) / "threads", "a") as f:
            f.write(f"{torch.get_num_threads()}\n")
        return real_step(self, active)

    StackedTrainer.step = step


def refuse_start(gate: str) -> None:
    """Making a run waits for the test's "release", then is refused (a ConfigError naming model.hidden)."""
    from overfit.errors import ConfigError
    from overfit.session import Session

    def start(cls, *args, **kwargs):
        _wait_for_release(Path(gate))
        raise ConfigError("refused while the test waited", field="model.hidden")

    Session.start = classmethod(start)


def hold_start(gate: str) -> None:
    """Making a run waits for the test's "release" (a wide model, slow to make)."""
    from overfit.session import Session

    real_start = Session.start.__func__

    def start(cls, *args, **kwargs):
        _wait_for_release(Path(gate))
        return real_start(cls, *args, **kwargs)

    Session.start = classmethod(start)


def die_at_an_evaluation() -> None:
    """The process is SIGKILLed at its first evaluation past step 0, once that evaluation is on disk but before the lab
    hears of it (the recorder writes first, then the live view would be sent)."""
    import os
    import signal

    from overfit.web.runner import Chunks

    real_on_event = Chunks._on_event

    def on_event(self, event):
        if event.kind == "eval" and event.step > 0:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_on_event(self, event)

    Chunks._on_event = on_event
