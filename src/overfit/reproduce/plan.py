"""What `overfit reproduce` trains, and training it: every (preset, seed) run, started or resumed through `Session`.

    <out>/runs/<preset>-s<seed>/   ordinary run folders (resume them, open them in the lab)

A run already complete is reused and an interrupted one resumed, so running the same
command again continues where it stopped. A run that diverges is recorded as such (a
`diverged.json` beside its checkpoint) and judged as not converging; it does not stop
the others.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from ..config import RunConfig
from ..errors import ReproduceError, RunFolderError, TrainingDiverged
from ..files import write_atomic
from ..modes import get_mode
from ..presets import get_preset
from ..runs import RunFolder

REPRODUCE_PRESETS = ("relu_raw", "relu_1", "tanh_1", "cos_1", "cos_3", "bn_relu")
# The original experiment fits ink or background; its findings are judged on that mode's metrics.
MODE = "binary"
LOSSES = get_mode(MODE).losses
# Defaults sized so the whole command (12 runs) finishes well under 15 minutes on two
# CPU cores while every finding is visible; --steps 100000 is the original's length.
DEFAULT_STEPS = 20_000
DEFAULT_EVAL_EVERY = 500
DEFAULT_SEEDS = 2
DIVERGED = "diverged.json"


@dataclass(frozen=True)
class PlannedRun:
    preset: str
    seed: int
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.preset}-s{self.seed}"


def default_out(loss: str, init: str) -> Path:
    """reports/reproduce, with the variant in the name when loss or init is not the default."""
    suffix = "".join([f"-{loss}" if loss != "cross_entropy" else "", f"-init_{init}" if init != "original" else ""])
    return Path("reports") / f"reproduce{suffix}"


def plan(overrides: dict[str, Any], steps: int, eval_every: int, seeds: int) -> list[PlannedRun]:
    """Every (preset, seed) run with its config; `overrides` are dotted config keys for all runs."""
    runs = []
    for seed in range(seeds):
        for preset in REPRODUCE_PRESETS:
            cfg = get_preset(preset).with_overrides(
                {**overrides, "data.mode": MODE, "seed": seed, "schedule.steps": steps, "schedule.eval_every": eval_every})
            runs.append(PlannedRun(preset, seed, cfg))
    # Seed 0 of every preset comes first: an early stop still leaves one complete comparison.
    return runs


def make_meta(target: Any, steps: int, eval_every: int, seeds: int, loss: str, init: str, command: str) -> dict[str, Any]:
    """The report's header facts known before any run starts."""
    return {"title": "OVERFIT reproduction", "target": target.source, "height": target.height, "width": target.width,
            "steps": steps, "eval_every": eval_every, "seeds": list(range(seeds)), "loss": loss, "init": init,
            "started": _dt.datetime.now().isoformat(timespec="seconds"), "command": command}


def _same_run(saved: RunConfig, planned: RunConfig) -> bool:
    """Equal except for the step budget (a longer budget extends a run)."""
    def strip(c: RunConfig) -> RunConfig:
        return replace(c, schedule=replace(c.schedule, steps=1))

    return strip(saved) == strip(planned.pinned())  # saved configs are pinned when their run starts


def run_one(planned: PlannedRun, target: Any, runs_dir: Path, make_callback: Callable[[Any], Callable]) -> str:
    """Train (or resume, or reuse) one run; returns 'done', 'reused', 'diverged' or 'interrupted'.

    `make_callback(trainer)` gives the run's event callback (a progress bar, a stop request).
    """
    from ..session import Session

    path = runs_dir / planned.name
    if path.exists():
        if not _same_run(RunFolder.open(path).config(), planned.config):
            raise ReproduceError(f"{path} holds a run with a different config; choose another output folder or remove it",
                                 field="out_dir")
        if (path / DIVERGED).exists():
            return "diverged"
        try:
            session = Session.resume(path, {"schedule.steps": planned.config.schedule.steps})
        except RunFolderError as e:
            if e.field == "schedule.steps":  # already at its last step
                return "reused"
            raise
    else:
        session = Session.start(planned.config, runs_dir, planned.name, target=target)
    with session:
        try:
            result = session.run([make_callback(session.trainer)])
        except TrainingDiverged as e:
            write_atomic(session.path / DIVERGED, json.dumps({"step": e.step, "value": repr(e.value)}) + "\n")
            return "diverged"
    return "interrupted" if result.interrupted else "done"


def diverged_step(run_dir: Path) -> int | None:
    """The step at which the run in `run_dir` diverged, or None if it did not."""
    path = run_dir / DIVERGED
    return json.loads(path.read_text())["step"] if path.exists() else None
