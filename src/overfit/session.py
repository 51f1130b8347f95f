"""A run in progress: a trainer, its locked run folder and the recorder between them.

The one place that starts a new run and resumes one; the command line, `overfit
reproduce` and the lab all go through it:

    with Session.start(cfg, "runs") as session:        # or Session.resume("runs/relu_1-...")
        session.run([progress_bar])

Starting checks everything (config, picture, device, model) before a folder is made,
so bad input never leaves an empty run behind; that includes the memory the run will
take (`budget`): a run estimated over its budget (by default half the memory available)
is refused before anything is allocated. An allocation that fails all the same is an
`AllocationError`, and a new run that fails so before its first checkpoint leaves no
folder. Resuming loads the checkpoint, drops what was recorded after it, and continues
with exactly the weights, optimizer state and random streams of a run that never stopped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from . import budget, configio, memory
from .config import RunConfig
from .errors import OverfitError, RunFolderError, first_line
from .recorder import Recorder
from .runs import FINAL, GIF, MP4, RunFolder
from .targets import load_target
from .training import Callbacks, Trainer, TrainResult

# What a resumed run may change: how long it trains and where (never what it is).
RESUMABLE = ("schedule.steps", "device", "compile", "precision")


class Session:
    """A `Trainer` writing into a locked `RunFolder` through a `Recorder`; close it (or use `with`) to let go of the folder."""

    def __init__(self, trainer: Trainer, folder: RunFolder, new: bool = False) -> None:
        self.trainer = trainer
        self.folder = folder
        self.recorder = Recorder(folder)
        self.new = new
        """Whether this session made its folder (`start`): only then may a failure remove it."""

    @property
    def path(self) -> Path:
        return self.folder.path

    @classmethod
    def start(cls, cfg: RunConfig, runs_dir: str | os.PathLike, name: str | None = None, target: Any = None,
              max_memory: int | None = None) -> Session:
        """A new run of `cfg` in a new folder under `runs_dir` (named `name`, or preset and time).

        `max_memory`: the most bytes the run may take by `budget.estimate`; None is
        `budget.default_budget()` (half the memory available now). A run over it is refused
        with a `MemoryBudgetError` before anything is allocated: a text picture is not even
        rendered (a picture file is read, within data.max_pixels, for its size).
        """
        if target is None and cfg.data.image is not None:
            target = load_target(cfg.data)  # data.max_pixels is checked from the header, before decoding
        shape = (target.height, target.width) if target is not None else None
        est = budget.check(cfg, max_memory, shape)
        # Everything is checked before a folder exists.
        with memory.raising_allocation_errors("starting the run", est.largest.fields):
            trainer = Trainer(cfg.pinned(), target)
        folder = RunFolder.create(runs_dir, name, cfg.preset)
        try:
            session = cls(trainer, folder, new=True)
            with memory.raising_allocation_errors("starting the run", est.largest.fields):
                session.recorder.start(trainer)
        except BaseException:
            folder.unlock()
            _remove_new_folder(folder.path)
            raise
        return session

    @classmethod
    def resume(cls, path: str | os.PathLike, overrides: Mapping[str, Any] | None = None, max_memory: int | None = None) -> Session:
        """The run in folder `path`, at its checkpoint (or at step 0 if it has none yet).

        `overrides` may change only the fields in RESUMABLE; a run already at its last
        step needs a larger `schedule.steps`. `max_memory` as for `start`.
        """
        overrides = dict(overrides or {})
        fixed = sorted(set(overrides) - set(RESUMABLE))
        if fixed:
            raise RunFolderError(f"a resumed run keeps its config; only {', '.join(RESUMABLE)} can change", field=fixed[0])
        folder = RunFolder.open(path)
        folder.lock()
        try:
            # Pinned before the overrides: a raised step budget keeps the run's learning-rate schedule.
            cfg = folder.config().pinned().with_overrides(overrides)
            state = folder.checkpoint() if folder.has_checkpoint() else None
            # At its last step with final.png and the videos written, a run is complete; without them it was stopped
            # while writing them, and resuming it writes them (its loop has no step left, so it goes straight to the end).
            complete = all((folder.path / name).is_file() for name in (FINAL, MP4, GIF))
            if state is not None and int(state["step"]) >= cfg.schedule.steps and complete:
                raise RunFolderError(f"run {folder.path} is already at step {int(state['step']):,} of {cfg.schedule.steps:,}; "
                                     "raise schedule.steps to train further", field="schedule.steps")
            if state is not None:
                _check_unchanged(folder, state, cfg)
            target = folder.target()
            est = budget.check(cfg, max_memory, (target.height, target.width))
            with memory.raising_allocation_errors("resuming the run", est.largest.fields):
                trainer = Trainer(cfg, target)
            session = cls(trainer, folder)
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
        except BaseException:
            folder.unlock()
            raise
        return session

    def run(self, callbacks: Callbacks = None, until: int | None = None) -> TrainResult:
        """Train on (to `until`, or the end), recording first, then calling `callbacks`.

        A failed allocation is an `AllocationError`; a run this session started that has no
        checkpoint yet is then closed and its folder removed (`abandon`).
        """
        extra = [] if callbacks is None else ([callbacks] if callable(callbacks) else list(callbacks))
        try:
            return self.trainer.run([self.recorder, *extra], until=until)
        except Exception as e:
            if not memory.is_allocation_failure(e):
                raise
            self.abandon()
            raise memory.allocation_error(e, f"training (step {self.trainer.step:,})", _memory_fields(self.trainer)) from None

    def abandon(self) -> bool:
        """After a failure: close a run this session started and remove its folder, unless it holds a checkpoint.

        A folder with a checkpoint is never removed (it can be resumed). True if the folder was removed.
        """
        if not self.new or self.folder.has_checkpoint():
            return False
        self.discard()
        return True

    def checkpoint(self) -> None:
        """Save the trainer's state now (the lab's pause between chunks)."""
        self.recorder.checkpoint(self.trainer)

    def close(self) -> None:
        self.folder.unlock()

    def discard(self) -> None:
        """Close a session just started (nothing trained) and remove its folder: a batch of runs that could not all start."""
        self.close()
        _remove_new_folder(self.folder.path)

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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


def _memory_fields(trainer: Trainer) -> tuple[str, ...]:
    """The fields that drive a run's memory most, for an allocation that failed during training."""
    return budget.estimate(trainer.cfg, (trainer.target.height, trainer.target.width)).largest.fields


def _remove_new_folder(path: Path) -> None:
    """Remove a run folder this process just created and could not start (no orphan folder is left)."""
    import shutil

    try:
        shutil.rmtree(path)
    except OSError:
        pass

