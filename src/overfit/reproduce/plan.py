"""What `overfit reproduce` trains, and training it: every (preset, seed) run, started or resumed through `Session`.

    <out>/runs/<preset>-s<seed>/                      ordinary run folders (resume them, open them in the lab)
    <out>/variants/<key=value,...>/runs/<preset>-s<seed>/  the same, per combination, when there are several (`variants.py`)

A run already done (`RunFolder.finished`) is reused and an interrupted one resumed, so
running the same command again continues where it stopped. A run that diverges is
recorded as such (its folder's ending, `endings`) and judged as not converging; it does
not stop the others and is not trained again. A run stops early (`Session.stop_early`,
its ending saying when and why) once nothing it could still show would change a verdict
or a reported step count: every accuracy threshold of the report reached and every
spectral band learned. Runs that have not converged train the whole budget. Every run
that trains is opened in one memory budget (`budget.Pool`): they train at the same time.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..config import RunConfig
from ..errors import ReproduceError
from ..modes import get_mode
from ..presets import get_preset
from ..runs import RunFolder
from .findings import BAND_THRESHOLD, converged_threshold
from .variants import Variant
from ..spectrum import BandAnalyzer

REPRODUCE_PRESETS = ("relu_raw", "relu_1", "tanh_1", "cos_1", "cos_3", "bn_relu")
# The original experiment fits ink or background; its findings are judged on that mode's metrics.
MODE = "binary"
LOSSES = get_mode(MODE).losses
# The original's budget: every claim is judged at the length it was made for.
DEFAULT_STEPS = 100_000
DEFAULT_SEEDS = "0-1"  # `--seeds` as `overfit train` takes it (configio.parse_seeds)
MAX_SEEDS = 100
# Runs one reproduction trains at most (presets x seeds x variants): as many as 100 seeds of one variant.
MAX_RUNS = MAX_SEEDS * len(REPRODUCE_PRESETS)
# Each run's settings before any variant: the original's loss and init (what older reproductions saved).
BASE_SETTINGS = {"loss": "cross_entropy", "model.init": "original"}
# Evaluations: every 500 steps up to step 20,000, where curves and spectral bands change
# fast, then every 2,500 (73 evaluations for 100,000 steps instead of 201).
DEFAULT_EVAL_EVERY = 500
DEFAULT_EVAL_EVERY_LATE = 2_500
DEFAULT_EVAL_LATE_FROM = 20_000
# The accuracies whose first step the report tabulates; a run stops early only once it has reached all of them.
REPORTED_THRESHOLDS = (0.90, 0.95, 0.99)


@dataclass(frozen=True)
class PlannedRun:
    preset: str
    seed: int
    config: RunConfig
    variant: Variant = Variant()

    @property
    def name(self) -> str:
        """The run folder's name, '<preset>-s<seed>'."""
        return f"{self.preset}-s{self.seed}"

    @property
    def label(self) -> str:
        """The run among all of a reproduction's: its name, after its variant's where it has one."""
        return f"{self.variant.name}/{self.name}" if self.variant.settings else self.name


def default_out(variants: Sequence[Variant]) -> Path:
    """reports/reproduce; one variant off the original's settings in the name (reproduce-double_softmax-init_torch,
    reproduce-lr_0.001); several combinations: reports/reproduce-variants."""
    if len(variants) > 1:
        return Path("reports") / "reproduce-variants"
    parts = []
    for key, value in variants[0].settings if variants else ():
        if BASE_SETTINGS.get(key) == value:
            continue
        parts.append(value if key == "loss" else f"{key.rsplit('.', 1)[-1]}_{value}")
    return Path("reports") / "-".join(["reproduce", *parts])


def plan(overrides: dict[str, Any], steps: int, eval_every: int, seeds: Sequence[int],
         eval_every_late: int | None = DEFAULT_EVAL_EVERY_LATE, eval_late_from: int = DEFAULT_EVAL_LATE_FROM,
         variants: Sequence[Variant] = (Variant(),)) -> list[PlannedRun]:
    """Every (preset, seed, variant) run with its config; `overrides` are dotted config keys for all runs, each
    variant's settings go over them."""
    runs = []
    late = {"schedule.eval_every_late": eval_every_late, "schedule.eval_late_from": eval_late_from} \
        if eval_every_late is not None and eval_late_from < steps else {}
    for seed in seeds:
        for variant in variants:
            for preset in REPRODUCE_PRESETS:
                cfg = get_preset(preset).with_overrides({**overrides, **variant.overrides, "data.mode": MODE, "seed": seed,
                                                         "schedule.steps": steps, "schedule.eval_every": eval_every, **late})
                runs.append(PlannedRun(preset, seed, cfg, variant))
    # Seed 0 of every preset and variant comes first: an early stop still leaves one complete comparison.
    return runs


def make_meta(target: Any, steps: int, eval_every: int, seeds: Sequence[int], command: str) -> dict[str, Any]:
    """The report's header facts known before any run starts (each variant's loss and init come from its runs)."""
    return {"title": "OVERFIT reproduction", "target": target.source, "height": target.height, "width": target.width,
            "steps": steps, "eval_every": eval_every, "seeds": list(seeds),
            "started": _dt.datetime.now().isoformat(timespec="seconds"), "command": command}


def _same_run(saved: RunConfig, planned: RunConfig) -> bool:
    """Equal except for the step budget (a longer budget extends a run) and whether it writes TensorBoard events."""
    def strip(c: RunConfig) -> RunConfig:
        return replace(c, schedule=replace(c.schedule, steps=1), tensorboard=False)

    return strip(saved) == strip(planned.pinned())  # saved configs are pinned when their run starts


def run_status(planned: PlannedRun, runs_dir: Path) -> str:
    """What the run needs, read from its folder without opening it: 'diverged' | 'stopped' | 'reused' (done),
    'resume' or 'start'. A folder that holds a run of another config is refused."""
    path = runs_dir / planned.name
    if not path.exists():
        return "start"
    folder = RunFolder.open(path)
    if not _same_run(folder.config(), planned.config):
        raise ReproduceError(f"{path} holds a run with a different config; choose another output folder or remove it",
                             field="out_dir")
    ending = folder.ending()
    if ending is not None and ending.how == "diverged":  # judged as not converging; training it again changes nothing
        return "diverged"
    if folder.finished(planned.config.schedule.steps):
        return "stopped" if ending is not None and ending.how == "stopped" else "reused"
    return "resume"


def open_run(planned: PlannedRun, target: Any, runs_dir: Path, pool: Any = None) -> tuple[str, Any]:
    """The run's state and, if it still trains, its `Session` (in the memory budget `pool`):
    ('diverged' | 'stopped' | 'reused', None) or ('resumed' | 'started', session)."""
    from ..session import Session

    status = run_status(planned, runs_dir)
    if status == "resume":
        return "resumed", Session.resume(runs_dir / planned.name, {"schedule.steps": planned.config.schedule.steps,
                                                                   "tensorboard": planned.config.tensorboard}, pool=pool)
    if status == "start":
        return "started", Session.start(planned.config, runs_dir, planned.name, target=target, pool=pool)
    return status, None


class EarlyStop:
    """A run's callback that stops it once it has reached every reported accuracy and learned every spectral band.

    Its ending is recorded before the stop is requested (`Session.stop_early`), so a
    reproduction interrupted right there still knows the run ended on purpose.
    """

    def __init__(self, session: Any, target: Any, thresholds: tuple[float, ...]) -> None:
        self.session, self.thresholds, self.band_threshold = session, thresholds, BAND_THRESHOLD
        self.analyzer = BandAnalyzer(target.labels.astype(np.float64))
        self.best = max((r["dense_acc"] for r in session.trainer.history), default=0.0)
        self.learned = np.zeros(self.analyzer.n_bands, dtype=bool)
        for record in session.trainer.history:
            self._learn(record)

    def _learn(self, record: dict[str, Any]) -> None:
        """Mark the bands this evaluation learned: from its recorded band errors (every evaluation records them, from
        the frame as written), or for a record without them, from its frame on disk."""
        errors = record.get("bands")
        if errors is None:
            frames = self.session.folder.read_frames([record["step"]])
            if not len(frames):
                return
            errors = self.analyzer.errors(frames[0][1].astype(np.float64) / 255.0)
        self.learned |= np.array([np.nan if e is None else e for e in errors], dtype=np.float64) < self.band_threshold

    def __call__(self, event: Any) -> None:
        if event.kind != "eval":
            return
        self.best = max(self.best, event.metrics["dense_acc"])
        self._learn(event.metrics)
        steps = event.trainer.cfg.schedule.steps
        if event.step < steps and self.best >= max(self.thresholds) and self.learned.all():
            reason = (f"reached {max(self.thresholds):.0%} dense accuracy and learned all {self.analyzer.n_bands} spectral bands "
                      f"at step {event.step:,} of {steps:,}")
            self.session.stop_early(reason)


def train_all(opened: list[tuple[PlannedRun, Any]], target: Any, make_callback: Callable[[PlannedRun, Any], Callable],
              interruptible: bool = True) -> dict[str, str]:
    """Train every open session in one call of `session.train_sessions` (runs of one kind stacked, whatever their variant);
    each run's ending by its label ('done', 'stopped', 'diverged', 'interrupted'). `interruptible`: Ctrl-C stops them
    at a checkpoint (this process's main thread only)."""
    from ..session import train_sessions

    thresholds = tuple(sorted({*REPORTED_THRESHOLDS, converged_threshold(target.majority_rate)}))
    sessions = [session for _, session in opened]
    callbacks = [[make_callback(p, s.trainer), EarlyStop(s, target, thresholds)] for p, s in opened]
    train_sessions(sessions, callbacks, interruptible=interruptible)
    names = {"finished": "done"}
    endings: dict[str, str] = {}
    for planned, session in opened:
        ending = session.folder.ending()
        endings[planned.label] = names.get(ending.how, ending.how) if ending is not None else "interrupted"
    return endings


def ending(run_dir: Path, steps: int, history: list[dict[str, Any]]) -> dict[str, Any]:
    """How and when a run ended, for the report: trained the budget, stopped early, diverged, or still unfinished."""
    end = RunFolder(run_dir).ending(history)
    if end is not None and end.how == "diverged":
        return {"reason": "diverged", "step": end.step, "text": f"diverged at step {end.step:,} (the loss became NaN or infinite)"}
    if end is not None and end.how == "stopped":
        return {"reason": "stopped", "step": end.step, "text": f"stopped early: {end.reason}"}
    last = history[-1]["step"] if history else 0
    if last >= steps:
        return {"reason": "budget", "step": last, "text": f"trained the whole budget of {steps:,} steps"}
    return {"reason": "unfinished", "step": last, "text": f"unfinished at step {last:,} of {steps:,}"}
