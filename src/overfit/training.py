"""The training loop: Adam on random coordinate batches, with evaluations as events.

`Trainer` owns everything a run needs to continue bit-for-bit after a restart
(model, optimizer, the random generators, the step); `train` is the one-call
API. Everything that watches a run (progress bar, metrics file, frames,
checkpoints, the browser) is a callback that receives `Event`s: the loop itself
knows nothing about files.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .config import RunConfig
from .errors import OverfitError
from .losses import LOSSES
from .metrics import batch_metrics, dense_metrics, dense_regression_metrics, regression_batch_metrics
from .models import model_for
from .sampling import Sampler, ValueSampler
from .targets import Target, load_target, make_target


class TrainingDiverged(OverfitError):
    """The loss became NaN or infinite; `step` is the first step where it did."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"training diverged: loss is {value} at step {step}")
        self.step = step
        self.value = value


class DeviceError(OverfitError):
    """The requested torch device does not exist or is not available here."""


@dataclass
class Event:
    """What a callback receives.

    kind: "log" every `schedule.log_every` steps (metrics: loss, steps_per_s),
    "eval" at each evaluation (metrics: the full evaluation record, prediction:
    values in [0, 1], row 0 on top: (H, W) probability of background for binary
    runs, (H, W) gray or (H, W, 3) colour values otherwise), "interrupt" when a
    stop was requested, "end" when the last step is done.
    """

    kind: str
    step: int
    metrics: dict[str, Any]
    trainer: Trainer
    prediction: np.ndarray | None = None


Callback = Callable[[Event], None]


@dataclass
class TrainResult:
    """What `train` returns."""

    config: RunConfig
    target: Target
    model: nn.Module
    history: list[dict[str, Any]] = field(default_factory=list)
    step: int = 0
    interrupted: bool = False


def resolve_device(name: str) -> torch.device:
    """`name` as a torch device, or a DeviceError saying why it cannot be used here."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise DeviceError(f"unknown device {name!r}; use cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} is not available: this torch build or machine has no CUDA GPU")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r} is not available: only {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceError(f"device {name!r} is not available: no Apple MPS backend here")
    return device


def derived_seeds(seed: int) -> dict[str, int]:
    """Independent seeds for each random stream of a run, all from the one `seed`.

    Separate streams mean that evaluating (or not) never changes the training
    batches, so interrupting, resuming or evaluating more often leaves the
    weights exactly the same.
    """
    children = np.random.SeedSequence(seed).spawn(4)
    names = ("init", "train", "eval", "preview")
    return {n: int(c.generate_state(1, dtype=np.uint64)[0] >> 1) for n, c in zip(names, children)}


class Trainer:
    """A run in memory: model, optimizer, generators and step counter."""

    def __init__(self, cfg: RunConfig, target: Target | None = None) -> None:
        self.cfg = cfg
        target = target if target is not None else load_target(cfg.data)
        if target.mode != cfg.data.mode:
            target = make_target(target.image, target.source, cfg.data.mode)
        self.target = target
        self.binary = cfg.data.mode == "binary"
        self.device = resolve_device(cfg.device)
        self.seeds = derived_seeds(cfg.seed)
        self.loss_fn = LOSSES[cfg.loss_name]

        # -- model: initialised from its own seed, leaving the global RNG alone --
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seeds["init"])
            self.model = model_for(cfg, self.target.height, self.target.width)
        self.model.to(self.device)
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=cfg.optim.lr,
            betas=(cfg.optim.beta1, cfg.optim.beta2),
            eps=cfg.optim.eps,
            # The fused kernel updates all parameters in one pass: about 3x faster than
            # foreach on CPU, where the optimizer is otherwise ~15 % of a step.
            **({"fused": True} if self.device.type in ("cpu", "cuda") else {"foreach": True}),
        )

        # -- data: the picture lives on the device, batches are drawn there --
        self.sampler: Sampler | ValueSampler
        if self.binary:
            self.labels = torch.from_numpy(self.target.labels).to(self.device)  # (H, W) uint8: 1 byte per pixel
            self.sampler = Sampler(self.labels)
        else:
            self.values = torch.from_numpy(self.target.values).to(self.device)  # (H, W, C) float32 in [0, 1]
            self.sampler = ValueSampler(self.values)
        self.train_gen = torch.Generator(device=self.device).manual_seed(self.seeds["train"])
        self.eval_gen = torch.Generator(device=self.device).manual_seed(self.seeds["eval"])

        self._forward_backward: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = self._eager_forward_backward
        if cfg.compile:
            self._forward_backward = self._compiled_forward_backward()

        self.step = 0
        self.train_seconds = 0.0
        self.history: list[dict[str, Any]] = []
        self._stop = False

    # -- checkpoints -----------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: tensors, numbers and the config as JSON."""
        return {
            "format": "overfit-checkpoint-1",
            "config": self.cfg.to_json(),
            "step": self.step,
            "train_seconds": self.train_seconds,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "train_gen": self.train_gen.get_state(),
            "eval_gen": self.eval_gen.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.train_gen.set_state(state["train_gen"])
        self.eval_gen.set_state(state["eval_gen"])
        self.step = int(state["step"])
        self.train_seconds = float(state["train_seconds"])

    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (safe from a signal handler)."""
        self._stop = True

    # -- the step --------------------------------------------------------------

    def _eager_forward_backward(self, yx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Loss of one batch, with its gradients accumulated into the parameters."""
        loss = self.loss_fn(self.model(yx), labels)
        loss.backward()
        return loss.detach()

    def _compiled_forward_backward(self) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The same function through torch.compile, falling back to eager if compiling fails.

        Compiling fuses the activation and its gradient with the surrounding
        elementwise work; the first call pays for the compile (cached on disk for
        later runs of the same architecture).
        """
        compiled = torch.compile(self._eager_forward_backward, dynamic=False)
        state = {"fn": compiled}

        def first_call(yx: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
            try:
                loss = compiled(yx, labels)
            except Exception as e:  # no C++ compiler, unsupported backend, ...
                warnings.warn(f"torch.compile failed ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); training eagerly")
                self.optimizer.zero_grad(set_to_none=True)
                state["fn"] = self._eager_forward_backward
                return self._eager_forward_backward(yx, labels)
            state["fn"] = compiled
            return loss

        state["fn"] = first_call
        return lambda yx, labels: state["fn"](yx, labels)

    # -- evaluation ------------------------------------------------------------

    def evaluate(self) -> tuple[dict[str, Any], np.ndarray]:
        """Metrics on a fresh random batch and on every pixel, in eval mode; and the dense prediction."""
        self.model.eval()
        yx, labels = self.sampler.sample(self.cfg.schedule.eval_batch_size, self.eval_gen)
        record: dict[str, Any] = {"step": self.step}
        if self.binary:
            record.update(batch_metrics(self.model, yx, labels, self.loss_fn))
            dense, prob = dense_metrics(self.model, self.labels, self.loss_fn)
        else:
            record.update(regression_batch_metrics(self.model, yx, labels))
            dense, prob = dense_regression_metrics(self.model, self.values)
        record.update(dense)
        record["train_seconds"] = round(self.train_seconds, 3)
        self.model.train()
        return record, prob

    def preview_batch(self, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """One training-sized batch from its own stream (for pictures; never used for training): coordinates and labels or values."""
        gen = torch.Generator(device=self.device).manual_seed(self.seeds["preview"])
        yx, labels = self.sampler.sample(n or self.cfg.optim.batch_size, gen)
        return yx.cpu().numpy(), labels.cpu().numpy()

    # -- the loop --------------------------------------------------------------

    def run(self, on_event: Callback | None = None, until: int | None = None) -> TrainResult:
        """Train from the current step to `schedule.steps` (or to step `until`, if sooner), emitting events.

        Stopping early (a stop request, or `until`) ends with an "interrupt" event;
        calling `run` again continues exactly where it stopped.
        """
        emit = on_event or (lambda event: None)
        sched, batch = self.cfg.schedule, self.cfg.optim.batch_size
        last = sched.steps if until is None else min(until, sched.steps)
        model, opt, forward_backward = self.model, self.optimizer, self._forward_backward
        model.train()
        # Exponential decay from lr to lr_final: the rate at a step depends on the step alone, so resuming is exact.
        decay = None if self.cfg.optim.lr_final is None else self.cfg.optim.lr_final / self.cfg.optim.lr

        # The first evaluation shows the untrained network (the first video frame).
        if self.step == 0 and not self.history:
            self._evaluate_and_emit(emit, None)

        pending: list[torch.Tensor] = []  # losses not yet read back from the device
        window_start, window_time = self.step, time.perf_counter()
        while self.step < last and not self._stop:
            # -- one optimisation step: nothing here waits for the device --
            if decay is not None:
                for group in opt.param_groups:
                    group["lr"] = self.cfg.optim.lr * decay ** (self.step / sched.steps)
            yx, labels = self.sampler.sample(batch, self.train_gen)
            opt.zero_grad(set_to_none=True)
            pending.append(forward_backward(yx, labels))
            opt.step()
            self.step += 1

            # -- read the losses back only every log_every steps (and before evaluating) --
            evaluating = self.step % sched.eval_every == 0 or self.step == sched.steps
            if self.step % sched.log_every == 0 or evaluating or self._stop or self.step == last:
                mean_loss = self._check_losses(pending, self.step - len(pending))
                pending.clear()
                now = time.perf_counter()
                self.train_seconds += now - window_time
                rate = (self.step - window_start) / max(now - window_time, 1e-9)
                emit(Event("log", self.step, {"step": self.step, "loss": mean_loss, "steps_per_s": rate}, self))

                if evaluating:
                    self._evaluate_and_emit(emit, mean_loss)
                window_start, window_time = self.step, time.perf_counter()

        interrupted = self.step < sched.steps
        self._stop = False  # the request is served; a later `run` continues
        emit(Event("interrupt" if interrupted else "end", self.step, self.history[-1] if self.history else {}, self))
        return TrainResult(self.cfg, self.target, model, self.history, self.step, interrupted)

    def _check_losses(self, pending: list[torch.Tensor], first_step: int) -> float:
        """Mean of the pending losses; TrainingDiverged naming the first non-finite step."""
        if not pending:
            return math.nan
        losses = torch.stack(pending).double().cpu()
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            i = int((~finite).nonzero()[0, 0])
            raise TrainingDiverged(first_step + i + 1, float(losses[i]))
        return float(losses.mean())

    def _evaluate_and_emit(self, emit: Callback, train_loss: float | None) -> None:
        record, prob = self.evaluate()
        if not math.isfinite(record["dense_loss"]):
            raise TrainingDiverged(self.step, record["dense_loss"])
        if train_loss is not None:
            record["train_loss"] = train_loss
        self.history.append(record)
        emit(Event("eval", self.step, record, self, prob))


def train(cfg: RunConfig, on_event: Callback | None = None, target: Target | None = None) -> TrainResult:
    """Train a fresh model for `cfg` (no files written) and return the result.

    `on_event` receives every `Event`; call `event.trainer.request_stop()` from it
    to stop early.
    """
    return Trainer(cfg, target).run(on_event)
