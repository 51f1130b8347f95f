"""A run in progress: a trainer, its locked run folder and the recorder between them.

The one place that starts a new run and resumes one; the command line, `overfit
reproduce` and the lab all go through it:

    with Session.start(cfg, "runs") as session:        # or Session.resume("runs/relu_1-...")
        session.run([progress_bar])

Starting checks everything (config, picture, device, model) before a folder is made,
so bad input never leaves an empty run behind. Resuming loads the checkpoint, drops
what was recorded after it, and continues with exactly the weights, optimizer state
and random streams of a run that never stopped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from . import configio
from .config import RunConfig
from .errors import OverfitError, RunFolderError, first_line
from .recorder import Recorder
from .runs import RunFolder
from .training import Callbacks, Trainer, TrainResult

# What a resumed run may change: how long it trains and where (never what it is).
RESUMABLE = ("schedule.steps", "device", "compile", "precision")


class Session:
    """A `Trainer` writing into a locked `RunFolder` through a `Recorder`; close it (or use `with`) to let go of the folder."""

    def __init__(self, trainer: Trainer, folder: RunFolder) -> None:
        self.trainer = trainer
        self.folder = folder
        self.recorder = Recorder(folder)

    @property
    def path(self) -> Path:
        return self.folder.path

    @classmethod
    def start(cls, cfg: RunConfig, runs_dir: str | os.PathLike, name: str | None = None, target: Any = None) -> Session:
        """A new run of `cfg` in a new folder under `runs_dir` (named `name`, or preset and time)."""
        trainer = Trainer(cfg.pinned(), target)  # everything is checked before a folder exists
        folder = RunFolder.create(runs_dir, name, cfg.preset)
        try:
            session = cls(trainer, folder)
            session.recorder.start(trainer)
        except BaseException:
            folder.unlock()
            _remove_new_folder(folder.path)
            raise
        return session

    @classmethod
    def resume(cls, path: str | os.PathLike, overrides: Mapping[str, Any] | None = None) -> Session:
        """The run in folder `path`, at its checkpoint (or at step 0 if it has none yet).

        `overrides` may change only the fields in RESUMABLE; a run already at its last
        step needs a larger `schedule.steps`.
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
            if state is not None and int(state["step"]) >= cfg.schedule.steps:
                raise RunFolderError(f"run {folder.path} is already at step {int(state['step']):,} of {cfg.schedule.steps:,}; "
                                     "raise schedule.steps to train further", field="schedule.steps")
            if state is not None:
                _check_unchanged(folder, state, cfg)
            trainer = Trainer(cfg, folder.target())
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
        """Train on (to `until`, or the end), recording first, then calling `callbacks`."""
        extra = [] if callbacks is None else ([callbacks] if callable(callbacks) else list(callbacks))
        return self.trainer.run([self.recorder, *extra], until=until)

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


def _remove_new_folder(path: Path) -> None:
    """Remove a run folder this process just created and could not start (no orphan folder is left)."""
    import shutil

    try:
        shutil.rmtree(path)
    except OSError:
        pass

