"""The training loop: Adam on random coordinate batches, with evaluations as events.

`Trainer` owns everything a run needs to continue bit-for-bit after a restart
(model, optimizer, the step: its batches are a function of its seed and step); `train` is the one-call
API. Everything that watches a run (progress bar, the run folder's recorder, the
lab's live view) is a callback that receives `Event`s, and `run` takes a list of
them: the loop itself knows nothing about files. What an evaluation measures beyond
the metrics (layer statistics, band errors, ...) is a list of probes handed to the
trainer (`overfit.probes`). What differs between binary, gray and colour pictures
(targets, sampler, metrics) comes from `modes`.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence, Union

import numpy as np
import torch
from torch import nn

from .config import RunConfig
from .devices import native_bf16, resolve_device
from .errors import DeviceError, TrainingDiverged
from .losses import LOSSES
from .models import model_for
from .modes import get_mode
from .probes import Probe
from .sampling import holdout_split, preview_batch
from .stacked import StackedTrainer, train_stacks
from .targets import Target, load_target, make_target

__all__ = ["Callback", "DeviceError", "Event", "Probe", "RunLoop", "TrainResult", "Trainer", "TrainingDiverged", "derived_seeds",
           "mean_loss", "resolve_device", "train", "train_configs"]


@dataclass
class Event:
    """What a callback receives.

    kind: "log" every `schedule.log_every` steps (metrics: loss, steps_per_s),
    "eval" at each evaluation (metrics: the full evaluation record, prediction:
    values in [0, 1], row 0 on top: (H, W) probability of background for binary
    runs, (H, W) gray or (H, W, 3) colour values otherwise), "chunk" when
    `run(until=...)` reached its step (the run goes on with the next call),
    "interrupt" when a stop was requested, "end" when the last step is done.
    """

    kind: str
    step: int
    metrics: dict[str, Any]
    trainer: Trainer
    prediction: np.ndarray | None = None


Callback = Callable[[Event], None]
Callbacks = Union[Callback, Iterable[Callback], None]


def _callbacks(on_event: Callbacks) -> Callback:
    """One callback that calls each of `on_event` (a callback, a list of them, or None) in order."""
    if on_event is None:
        return lambda event: None
    if callable(on_event):
        return on_event
    listeners = list(on_event)

    def emit(event: Event) -> None:
        for listener in listeners:
            listener(event)
    return emit


@dataclass
class TrainResult:
    """What `train` returns."""

    config: RunConfig
    target: Target
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    interrupted: bool = False
    diverged: TrainingDiverged | None = None
    """Set by `StackedTrainer` for a run whose loss diverged (it left the stack; the others went on)."""

    def _repr_html_(self) -> str:
        """A notebook's view: headline, the network's prediction of the picture, the curves (`showing`)."""
        from .showing import result_html

        return result_html(self)


def derived_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for each random stream of a run, all from the one `seed`.

    Separate streams mean that evaluating (or not) never changes the training
    batches, so interrupting, resuming or evaluating more often leaves the
    weights exactly the same.
    """
    children = np.random.SeedSequence(seed).spawn(5)  # child k depends on k alone: adding a stream keeps the others
    names = ("init", "train", "eval", "preview", "holdout")
    return {n: int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for n, c in zip(names, children)}


class Trainer:
    """A run in memory: model, optimizer, seeds and step counter.

    `probes`: what each evaluation measures beyond the metrics (`overfit.probes`), each adding
    its keys to the evaluation record; fresh ones per trainer. There are none by default: a
    bare trainer records the metrics only. `Session` (every run with a folder, so the CLI,
    the lab, sweeps and reproduce) passes `diagnostics.default_probes()`: "layers", "bands".
    """

    def __init__(self, cfg: RunConfig, target: Target | None = None, probes: Sequence[Probe] = ()) -> None:
        self.cfg = cfg
        self.probes = list(probes)
        target = target if target is not None else load_target(cfg.data)
        if target.mode != cfg.data.mode:
            target = make_target(target.image, target.source, cfg.data.mode)
        self.target = target
        self.mode = get_mode(cfg.data.mode)
        self.device = resolve_device(cfg.device)
        if cfg.precision == "bf16" and not native_bf16(self.device):
            raise DeviceError(f"bf16 is not native on {self.device} here (it needs AVX512-BF16 or AMX on a CPU, or a bf16 GPU); "
                              "use fp32", field="precision")
        self.seeds = derived_seeds(cfg.seed)
        self.loss_fn = LOSSES[cfg.loss_name]

        # -- model: initialised from its own seed, leaving the global RNG alone --
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seeds["init"])
            self.model = model_for(cfg, self.target.height, self.target.width)
        self.model.to(self.device)
        # The run's Adam state in torch's own form, which checkpoints save and resumes load; the engine
        # (`stacked.StackedTrainer`) does the updates on its stacked copy and writes the state back here.
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2),
                                          eps=cfg.optim.eps)

        # -- data: the picture lives on the device, batches are drawn there (from the training pixels only) --
        self.target_tensor = self.mode.target_tensor(self.target, self.device)
        self.split = holdout_split(cfg.data.holdout, self.target.height, self.target.width, self.seeds["holdout"], self.device)
        self.sampler = self.mode.sampler(self.target_tensor, self.split)

        self.step = 0
        self.train_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self.stop_requested = False
        """Set by `request_stop`; the loop stops after the current step and clears it."""

    # -- checkpoints -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors, numbers and the config as JSON."""
        return {
            "format": "overfit-checkpoint-2",  # runs.CHECKPOINT_FORMAT: batches drawn by (seed, step), no generator state
            "config": self.cfg.to_json(),
            "step": self.step,
            "train_seconds": self.train_seconds,
            # A run trained in a stack holds views of the stack's tensors: each saved as its own slice.
            "model": {k: v.clone() if v.untyped_storage().nbytes() > v.nbytes else v for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])

    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (safe from a signal handler)."""
        self.stop_requested = True

    # -- evaluation ------------------------------------------------------------

    def evaluate(self) -> tuple[dict[str, Any], np.ndarray]:
        """Metrics on a fresh random batch and on every pixel, in eval mode, and what the probes add; and the dense prediction.

        With held-out pixels (`data.holdout`) the batch comes from the training pixels and the
        dense pass also scores the training pixels (`fit_*`) and the held-out ones (`test_*`).
        """
        self.model.eval()
        yx, labels = self.sampler.sample(self.cfg.schedule.eval_batch_size, self.seeds["eval"], self.step)
        record: dict[str, Any] = {"step": self.step}
        with contextlib.ExitStack() as around:  # probes watch the batch's forward pass (no second pass for them)
            for probe in self.probes:
                around.enter_context(probe.around_batch(self, yx))
            record.update(self.mode.batch_metrics(self.model, yx, labels, self.loss_fn))
        dense, prob = self.mode.dense_metrics(self.model, self.target_tensor, self.loss_fn, self.split)
        record.update(dense)
        record["train_seconds"] = round(self.train_seconds, 3)
        for probe in self.probes:
            probe.after_dense(self, record, prob)
        self.model.train()
        return record, prob

    def evaluate_and_record(self, train_loss: float | None = None) -> tuple[dict[str, Any], np.ndarray]:
        """`evaluate`, with the training loss of the last log window added, appended to the history.

        TrainingDiverged when the dense loss is not finite (nothing is appended then).
        """
        record, prob = self.evaluate()
        if not math.isfinite(record["dense_loss"]):
            raise TrainingDiverged(self.step, record["dense_loss"])
        if train_loss is not None:
            record["train_loss"] = train_loss
        self.history.append(record)
        return record, prob

    def preview_batch(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One training-sized batch from its own stream (for pictures; never used for training): coordinates and labels or values."""
        return preview_batch(self.sampler, self.seeds["preview"], n or self.cfg.optim.batch_size)

    # -- the loop --------------------------------------------------------------

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's training batch from the run's own stream: coordinates and labels or values."""
        return self.sampler.sample(self.cfg.optim.batch_size, self.seeds["train"], self.step)

    def loop(self, on_event: Callbacks = None, until: int | None = None) -> RunLoop:
        """The bookkeeping of one `run` (events, losses, evaluations), for a caller that does the steps itself."""
        return RunLoop(self, _callbacks(on_event), until)

    def run(self, on_event: Callbacks = None, until: int | None = None) -> TrainResult:
        """Train from the current step to `schedule.steps` (or to step `until`, if sooner), emitting events.

        `on_event`: a callback or a list of them, called in order. Reaching `until`
        ends with a "chunk" event, a stop request with an "interrupt" event; calling
        `run` again continues exactly where it stopped.
        """
        result = StackedTrainer([self]).run([on_event], until)[0]
        if result.diverged is not None:
            raise result.diverged
        return result


def mean_loss(pending: Sequence[torch.Tensor], first_step: int) -> float:
    """Mean of the losses of the steps after `first_step` (NaN for none); TrainingDiverged naming the first non-finite step."""
    if not pending:
        return math.nan
    losses = torch.stack(list(pending)).double().cpu()  # the one wait for the device in a log window
    finite = torch.isfinite(losses)
    if not bool(finite.all()):
        i = int((~finite).nonzero()[0, 0])
        raise TrainingDiverged(first_step + i + 1, float(losses[i]))
    return float(losses.mean())


class RunLoop:
    """What happens around the steps of one `Trainer.run`: losses read back, log and eval events, the end.

    `begin()` evaluates the untrained network (a fresh run's first frame); `record(loss)`
    follows each step; `finish()` emits the closing event. `StackedTrainer` drives one
    of these per run while it does the steps of all of them at once. It uses only the
    trainer's public surface: `step`, `history`, `stop_requested`, `evaluate_and_record`.
    """

    def __init__(self, trainer: Trainer, emit: Callback, until: int | None) -> None:
        self.trainer = trainer
        self.emit = emit
        steps = trainer.cfg.schedule.steps
        self.last = steps if until is None else min(until, steps)
        self.pending: list[torch.Tensor] = []  # losses not yet read back from the device
        self.window_start, self.window_time = trainer.step, time.perf_counter()

    @property
    def active(self) -> bool:
        return self.trainer.step < self.last and not self.trainer.stop_requested

    def evaluates_next(self) -> bool:
        """Whether the next `record` evaluates (and so a recorder writes the run's checkpoint)."""
        return self.trainer.cfg.schedule.evaluates_at(self.trainer.step)

    def begin(self) -> None:
        t = self.trainer
        t.model.train()
        if t.step == 0 and not t.history:  # a fresh run's first frame: the untrained network
            self._evaluate(None)
        self.window_start, self.window_time = t.step, time.perf_counter()

    def record(self, loss: torch.Tensor) -> None:
        """After each step: log every log_every steps, evaluate when the schedule says so."""
        t, sched = self.trainer, self.trainer.cfg.schedule
        # -- losses stay on the device: reading one back waits for the step, so only a log or an evaluation does --
        self.pending.append(loss)
        evaluating = sched.evaluates_at(t.step)
        if not (t.step % sched.log_every == 0 or evaluating or t.stop_requested or t.step == self.last):
            return

        # -- log: the window's mean loss (a non-finite one ends the run here) and its speed --
        train_loss = mean_loss(self.pending, t.step - len(self.pending))
        self.pending.clear()
        now = time.perf_counter()
        t.train_seconds += now - self.window_time
        rate = (t.step - self.window_start) / max(now - self.window_time, 1e-9)
        self.emit(Event("log", t.step, {"step": t.step, "loss": train_loss, "steps_per_s": rate}, t))

        # -- evaluate: metrics and probes, into the history, then to the callbacks --
        if evaluating:
            self._evaluate(train_loss)

        # -- the next window starts now, so evaluating and the callbacks' work count as neither training time nor speed --
        self.window_start, self.window_time = t.step, time.perf_counter()

    def _evaluate(self, train_loss: float | None) -> None:
        record, prediction = self.trainer.evaluate_and_record(train_loss)
        self.emit(Event("eval", self.trainer.step, record, self.trainer, prediction))

    def diverged(self, error: TrainingDiverged) -> TrainResult:
        """The result of a run whose loss diverged (its events end at its last good evaluation)."""
        t = self.trainer
        return TrainResult(t.cfg, t.target, t.model, t.history, t.step, True, error)

    def finish(self) -> TrainResult:
        t = self.trainer
        interrupted = t.step < t.cfg.schedule.steps
        kind = "end" if not interrupted else ("interrupt" if t.stop_requested else "chunk")
        t.stop_requested = False  # the request is served; a later `run` continues
        self.emit(Event(kind, t.step, t.history[-1] if t.history else {}, t))
        return TrainResult(t.cfg, t.target, t.model, t.history, t.step, interrupted)


def train(cfg: RunConfig, on_event: Callbacks = None, target: Target | None = None, probes: Sequence[Probe] = ()) -> TrainResult:
    """Train a fresh model for `cfg` (no files written) and return the result.

    `on_event` (a callback or a list of them) receives every `Event`; call
    `event.trainer.request_stop()` from one to stop early. `probes`: what each evaluation
    measures beyond the metrics, as for `Trainer` (none by default; pass
    `overfit.diagnostics.default_probes()` for the "layers" and "bands" a run folder records).
    """
    return Trainer(cfg, target, probes).run(on_event)


def train_configs(configs: Sequence[RunConfig], callbacks: Sequence[Callbacks] | None = None, target: Target | None = None) -> list[TrainResult]:
    """Train a fresh run for each config (no files written, no probes), stacked where they can be; results in the order given.

    A run whose loss diverges in a stack has `diverged` set in its result; the others go on.
    """
    return train_stacks([Trainer(cfg, target) for cfg in configs], callbacks)
