"""A run in progress, and the one lifecycle every front end drives runs through.

    with Session.start(cfg, "runs") as session:         # or Session.resume("runs/relu_1-...")
        train_sessions([session], [[progress_bar]])     # or session.run(...) for the lab's chunks

`Session.start` makes a new run and `Session.resume` continues one; `start_sessions`
starts several at once. `train_sessions` trains any set of sessions: one run, the runs
of `overfit train --seeds`, a reproduction, a sweep trial. It puts each run's recorder
first, trains runs of one kind stacked (`stacked.train_stacks`), turns a failed
allocation into one `AllocationError`, lets Ctrl-C stop every run at a checkpoint, and
records how each run ended in its folder (`endings`: finished, stopped early, diverged,
failed, interrupted); `RunFolder.finished` reads that record back for everyone.

Starting checks everything (config, picture, device, model) before a folder is made,
so bad input never leaves an empty run behind; that includes the memory the run will
take: every session reserves its estimate in a `budget.Pool` (one per call by default,
or the caller's, shared by everything that trains at the same time), and a run that
does not fit beside the others is refused before anything is allocated. An allocation
that fails all the same is an `AllocationError`, and a new run that fails so before its
first checkpoint leaves no folder. Resuming loads the checkpoint, drops what was
recorded after it, and continues with exactly the weights, optimizer state and random
streams of a run that never stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from . import budget, configio, diagnostics, diskspace, memory
from .config import RESUMABLE, RunConfig
from .endings import Ending
from .errors import OverfitError, RunFolderError, first_line
from .recorder import Recorder
from .runs import RunFolder
from .stacked import train_stacks
from .targets import load_target
from .tensorboard import Board
from .training import Callbacks, Trainer, TrainResult


class Session:
    """A `Trainer` writing into a locked `RunFolder` through a `Recorder`; close it (or use `with`) to let go of the folder."""

    def __init__(self, trainer: Trainer, folder: RunFolder, new: bool = False, release: Callable[[], None] | None = None) -> None:
        self.trainer = trainer
        self.folder = folder
        self.recorder = Recorder(folder)
        self.board = Board(folder) if trainer.cfg.tensorboard else None
        """The run's TensorBoard events (`RunConfig.tensorboard`), written right after the recorder."""
        self.new = new
        """Whether this session made its folder (`start`): only then may a failure remove it."""
        self._release = release  # gives the run's share of the memory budget back
        self._stopped: Ending | None = None

    @property
    def path(self) -> Path:
        return self.folder.path

    @classmethod
    def start(cls, cfg: RunConfig, runs_dir: str | os.PathLike, name: str | None = None, target: Any = None,
              max_memory: int | None = None, pool: budget.Pool | None = None) -> Session:
        """A new run of `cfg` in a new folder under `runs_dir` (named `name`, or preset and time).

        Memory: the run reserves its estimate in `pool` (everything training at the same time
        shares it), or in a pool of its own of `max_memory` bytes (None: half the memory
        available now). A run that does not fit is refused with a `MemoryBudgetError` before
        anything is allocated: a text picture is not even rendered (a picture file is read,
        within data.max_pixels, for its size).
        """
        if target is None and cfg.data.image is not None:
            target = load_target(cfg.data)  # data.max_pixels is checked from the header, before decoding
        shape = (target.height, target.width) if target is not None else None
        diskspace.check_disk([cfg], [shape], runs_dir)
        est, release = (pool or budget.Pool(max_memory)).reserve(cfg, shape)
        try:
            # Everything is checked before a folder exists.
            with memory.raising_allocation_errors("starting the run", est.largest.fields):
                trainer = Trainer(cfg.pinned(), target, diagnostics.default_probes())
            folder = RunFolder.create(runs_dir, name, cfg.preset)
        except BaseException:
            release()
            raise
        try:
            session = cls(trainer, folder, new=True, release=release)
            with memory.raising_allocation_errors("starting the run", est.largest.fields):
                session.recorder.start(trainer)
        except BaseException:
            release()
            folder.unlock()
            _remove_new_folder(folder.path)
            raise
        return session

    @classmethod
    def resume(cls, path: str | os.PathLike, overrides: Mapping[str, Any] | None = None, max_memory: int | None = None,
               pool: budget.Pool | None = None) -> Session:
        """The run in folder `path`, at its checkpoint (or at step 0 if it has none yet).

        `overrides` may change only the fields in RESUMABLE; a finished run (`RunFolder.finished`)
        needs a larger `schedule.steps`, and a run stopped early is not trained further.
        `max_memory` and `pool` as for `start`.
        """
        overrides = dict(overrides or {})
        fixed = sorted(set(overrides) - set(RESUMABLE))
        if fixed:
            raise RunFolderError(f"a resumed run keeps its config; only {', '.join(RESUMABLE)} can change", field=fixed[0])
        folder = RunFolder.open(path)
        folder.lock()
        release: Callable[[], None] | None = None
        try:
            # Pinned before the overrides: a raised step budget keeps the run's learning-rate schedule.
            cfg = folder.config().pinned().with_overrides(overrides)
            ending = folder.ending()
            if ending is not None and ending.done(cfg.schedule.steps):
                if ending.how == "finished":
                    why = f"is already at step {ending.step:,} of {cfg.schedule.steps:,}; raise schedule.steps to train further"
                else:
                    why = f"stopped early at step {ending.step:,} ({ending.reason}); start a new run to train further"
                raise RunFolderError(f"run {folder.path} {why}", field="schedule.steps")
            # The memory is reserved from the picture's header, before the checkpoint or the picture is read.
            shape = folder.target_size()
            est, release = (pool or budget.Pool(max_memory)).reserve(cfg, shape)
            state = folder.checkpoint() if folder.has_checkpoint() else None
            if state is not None:
                _check_unchanged(folder, state, cfg)
            # The disk for the rest of the schedule, before anything is written: a refusal leaves the folder as it was.
            diskspace.check_disk([cfg], [shape if shape[0] else None], folder.path, from_steps=[_checkpoint_step(folder, state)])
            target = folder.target()
            with memory.raising_allocation_errors("resuming the run", est.largest.fields):
                trainer = Trainer(cfg, target, diagnostics.default_probes())
            session = cls(trainer, folder, release=release)
            if state is None:  # created, but stopped before its first checkpoint: start it over
                session.recorder.start(trainer)
                folder.rewind(-1)
            else:
                try:
                    trainer.load_state_dict(state)
                except (RuntimeError, KeyError, ValueError, TypeError) as e:
                    raise RunFolderError(f"checkpoint of {folder.path} does not fit its config.json (was it edited?): "
                                         f"{first_line(e)}") from None
                folder.write_config(cfg)
                trainer.history = folder.rewind(trainer.step)
            folder.clear_ending()  # it trains again: how it last stopped no longer describes it
        except BaseException:
            if release is not None:
                release()
            folder.unlock()
            raise
        return session

    @property
    def recorders(self) -> list[Callable[[Any], None]]:
        """What writes the run into its folder, first among its callbacks: the recorder, then its TensorBoard events."""
        return [self.recorder] if self.board is None else [self.recorder, self.board]

    def run(self, callbacks: Callbacks = None, until: int | None = None) -> TrainResult:
        """Train on (to `until`, or the end), recording first, then calling `callbacks`; the session stays open.

        The lab's chunks of training: `train_sessions` for one session, without Ctrl-C handling.
        A run that diverges raises `TrainingDiverged` (its ending recorded).
        """
        result = train_sessions([self], [callbacks], until, interruptible=False, close=False)[0]
        if result.diverged is not None:
            raise result.diverged
        return result

    def stop_early(self, reason: str) -> None:
        """End the run on purpose after the current step (`overfit reproduce`'s early stop), recording why now.

        The record is written before the stop is requested, so an interruption right there
        still finds the run stopped on purpose.
        """
        self._stopped = Ending("stopped", self.trainer.step, reason)
        self.folder.write_ending(self._stopped)
        self.trainer.request_stop()

    def record_interrupt(self, reason: str = "interrupted") -> Ending:
        """Record that training stopped at the current step, at a checkpoint it resumes from (the lab's pause)."""
        ending = Ending("interrupted", self.trainer.step, reason)
        self.folder.write_ending(ending)
        return ending

    def checkpoint(self) -> None:
        """Save the trainer's state now."""
        self.recorder.checkpoint(self.trainer)

    def record_failure(self, error: BaseException | str) -> None:
        """Record that training stopped with `error` at the current step (kept until the run trains again)."""
        message = error if isinstance(error, str) else first_line(error)
        self.folder.write_ending(Ending("failed", self.trainer.step, message))
        if self.board is not None:
            self.board.failed(self.trainer.step)

    def conclude(self, result: TrainResult, until: int | None = None) -> Ending | None:
        """Record how the training behind `result` (trained to `until`) stopped; None for a chunk (the run goes on)."""
        t = self.trainer
        if result.diverged is not None:
            ending: Ending | None = Ending("diverged", result.diverged.step, str(result.diverged))
        elif not result.interrupted:
            ending = Ending("finished", result.step, f"trained all {t.cfg.schedule.steps:,} steps")
        elif self._stopped is not None:
            return self._stopped  # written when the stop was asked for
        elif until is not None and result.step >= until:
            return None  # a chunk: the caller trains on with the next call
        else:
            return self.record_interrupt()
        self.folder.write_ending(ending)
        if self.board is not None and ending.how == "diverged":
            self.board.failed(ending.step)
        return ending

    def abandon(self) -> bool:
        """After a failure: close a run this session started and remove its folder, unless it holds a checkpoint.

        A folder with a checkpoint is never removed (it can be resumed). True if the folder was removed.
        """
        if not self.new or self.folder.has_checkpoint():
            return False
        self.discard()
        return True

    def close(self) -> None:
        """Let go of the folder and of the run's share of the memory budget; close its TensorBoard events."""
        if self.board is not None:
            self.board.close()
        if self._release is not None:
            self._release()
            self._release = None
        self.folder.unlock()

    def discard(self) -> None:
        """Close a session just started (nothing trained) and remove its folder: a batch of runs that could not all start."""
        self.close()
        _remove_new_folder(self.folder.path)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checkpoint_step(folder: RunFolder, state: Mapping[str, Any] | None) -> int:
    """The step a checkpoint holds (-1 without one: the run starts over)."""
    if state is None:
        return -1
    try:
        return int(state["step"])
    except (TypeError, ValueError, RuntimeError):
        raise RunFolderError(f"checkpoint of {folder.path} holds no step number (was it edited?)") from None


def start_sessions(configs: Sequence[RunConfig], runs_dir: str | os.PathLike, names: Sequence[str | None],
                   max_memory: int | None = None, pool: budget.Pool | None = None) -> list[Session]:
    """A new run folder for each config, all within one memory budget (they will train at the same time).

    If any run cannot start (bad input, over the budget together), the ones already made
    are removed and the error is raised: nothing is left behind. Each picture is loaded once.
    """
    pool = pool or budget.Pool(max_memory)
    # Pictures first (a file is read, within data.max_pixels; text is not rendered yet), then the memory of all the
    # runs together: a refusal names the whole batch before any folder is made.
    targets: dict[Any, Any] = {}
    for cfg in configs:
        if cfg.data.image is not None and cfg.data not in targets:
            targets[cfg.data] = load_target(cfg.data)
    shapes = [(targets[c.data].height, targets[c.data].width) if c.data in targets else None for c in configs]
    diskspace.check_disk(configs, shapes, runs_dir)
    pool.check(configs, shapes)
    sessions: list[Session] = []
    try:
        for cfg, name in zip(configs, names):
            if cfg.data not in targets:
                targets[cfg.data] = load_target(cfg.data)
            sessions.append(Session.start(cfg, runs_dir, name, target=targets[cfg.data], pool=pool))
    except BaseException:
        for session in sessions:
            session.discard()
        raise
    return sessions


@contextlib.contextmanager
def stopping_on_interrupt(trainers: Sequence[Trainer]) -> Iterator[None]:
    """While inside, Ctrl-C asks every trainer to stop after its current step (each then saves a checkpoint).

    Only the main thread receives signals; elsewhere (the lab's worker) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop_all(signum: int, frame: Any) -> None:
        for trainer in trainers:
            trainer.request_stop()

    previous = signal.signal(signal.SIGINT, stop_all)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def train_sessions(sessions: Sequence[Session], callbacks: Sequence[Callbacks] | None = None, until: int | None = None,
                   interruptible: bool = True, close: bool = True) -> list[TrainResult]:
    """Train every session (to `until`, or its end), runs of one kind stacked; results in the order given.

    Each run's recorders come first (`Session.recorders`), then its `callbacks[k]`. Ctrl-C stops every run at a
    checkpoint (`interruptible`). A run that diverges leaves the others training and has
    `diverged` set in its result. How each run ended is recorded in its folder (`Session.conclude`).
    A failed allocation abandons the new runs without a checkpoint (their folders are
    removed), records the failure in the others and raises one `AllocationError`; any other
    error is recorded in every run and raised. `close`: close the sessions at the end.
    """
    given = list(callbacks) if callbacks is not None else [None] * len(sessions)
    watchers = [[*s.recorders, *([] if cb is None else [cb] if callable(cb) else list(cb))] for s, cb in zip(sessions, given)]
    trainers = [s.trainer for s in sessions]
    concluded: set[int] = set()

    def conclude(index: int, result: TrainResult) -> None:  # as soon as the run's stack is done
        sessions[index].conclude(result, until)
        concluded.add(index)

    try:
        try:
            with stopping_on_interrupt(trainers) if interruptible else contextlib.nullcontext():
                results = train_stacks(trainers, watchers, until, on_result=conclude)
        except Exception as e:
            failure: BaseException = e
            allocation = memory.is_allocation_failure(e)
            if allocation:
                step = min(t.step for t in trainers)
                failure = memory.allocation_error(e, f"training (step {step:,})", _memory_fields(trainers))
            # The runs of stacks already done keep their endings; of the others, a new run without a checkpoint
            # leaves no folder after a failed allocation, and the rest record the failure.
            for session in (s for i, s in enumerate(sessions) if i not in concluded):
                if not (allocation and session.abandon()):
                    session.record_failure(failure)
            if failure is e:
                raise
            raise failure from None
    finally:
        if close:
            for session in sessions:
                session.close()
    return results


def _check_unchanged(folder: RunFolder, state: dict[str, Any], cfg: RunConfig) -> None:
    """Refuse a config.json edited since the checkpoint was written (beyond what a resume may change)."""
    try:
        saved = RunConfig.from_json(state["config"]).pinned()
    except OverfitError as e:
        raise RunFolderError(f"checkpoint of {folder.path} holds an unreadable config: {e}") from None
    for key in configio.leaf_keys(RunConfig):
        ours, theirs = configio.get_path(cfg, key), configio.get_path(saved, key)
        if key not in RESUMABLE and ours != theirs:
            raise RunFolderError(f"config.json of {folder.path} was edited since its checkpoint ({key}: "
                                 f"{theirs!r} -> {ours!r}); a resumed run keeps its config", field=key)


def _memory_fields(trainers: Sequence[Trainer]) -> tuple[str, ...]:
    """The fields that drive the memory of runs training together most, for an allocation that failed during training."""
    shapes = [(t.target.height, t.target.width) for t in trainers]
    return budget.Estimate.together([budget.estimate(t.cfg, s) for t, s in zip(trainers, shapes)]).largest.fields


def _remove_new_folder(path: Path) -> None:
    """Remove a run folder this process just created and could not start (no orphan folder is left)."""
    import shutil

    try:
        shutil.rmtree(path)
    except OSError:
        pass

