"""Run folders: what a training run leaves on disk, and the one place that reads and writes it.

    runs/<name>/
      config.json      the complete RunConfig (`overfit train --config` re-runs it)
      target.png       the picture as fitted (8-bit gray, or RGB), so a run resumes without its source
      samples.png      one training batch, coloured by label
      metrics.jsonl    one JSON line per evaluation
      frames/          the dense prediction at each evaluation, 8-bit PNG (gray: P(background) or value; RGB)
      weights/         the model's weights at evaluations, half precision (safetensors), for the network view
      checkpoint.pt    model, optimizer, step and config (tensors only; batches follow from seed and step)
      final.png        target and prediction side by side      (when training ends)
      progress.mp4/gif one frame per evaluation, captioned      (when training ends)
      ending.json      how training last stopped: finished, stopped early, diverged, failed, interrupted (`endings`)
      tensorboard/     TensorBoard event files, with --tensorboard or `overfit tensorboard` (`tensorboard`)

Every file is written to a temporary name and renamed into place (`files`) and read as
untrusted input (`safefiles`: no link, FIFO or oversized file), so a crashed run leaves no
half-written file and a copied one reaches nothing outside it. A folder is never reused but
to resume it, and is held by one process at a time through a lock file. This module knows
the folder, not training: `recorder` writes a run's events, `session` starts and resumes runs.
"""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import re
from pathlib import Path
from typing import Any, Callable, TypeVar

from . import endings
from .config import RunConfig
from .endings import ENDING, Ending
from .errors import ConfigError, OverfitError, RunBusyError, RunExistsError, RunFolderError, first_line
from .files import remove_stale_temporaries, write_atomic
from .images import StoredFrames, read_png, save_png
from .safefiles import (NotPlainFile, checkpoint_limit, is_plain_file, lock_taken, open_plain_file, plain_folder, read_plain,
                        read_safetensors, take_lock)

CONFIG, METRICS, CHECKPOINT, TARGET = "config.json", "metrics.jsonl", "checkpoint.pt", "target.png"
SAMPLES, FINAL, MP4, GIF, FRAMES, LOCK = "samples.png", "final.png", "progress.mp4", "progress.gif", "frames", ".lock"
WEIGHTS, TENSORBOARD = "weights", "tensorboard"
T = TypeVar("T")
CHECKPOINT_FORMAT = "overfit-checkpoint-2"
# Checkpoints of older versions: their models load (render, export, inspect), but their runs drew batches from a
# generator's state, and this version draws them by (seed, step): they cannot continue exactly, so they do not resume.
OLDER_CHECKPOINT_FORMATS = ("overfit-checkpoint-1",)
# What a checkpoint holds: enough to use the model, and the rest to resume training exactly.
MODEL_KEYS = ("format", "config", "step", "model")
CHECKPOINT_KEYS = MODEL_KEYS + ("train_seconds", "optimizer")
# The oldest torch whose `torch.load(weights_only=True)` is safe against a crafted file: below 2.6 it can run code
# (CVE-2025-32434), below 2.10 it can corrupt memory (CVE-2026-24747). A checkpoint may come from anywhere.
SAFE_TORCH = (2, 10)


# A run folder name: a plain name, no separators, no leading dot (also the lab's run-id rule).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # the page checks it too: fullmatch it (`$` passes "x\n")


# A frame's or weights file's name: a step in ASCII digits (str.isdigit also takes "²", which int() refuses).
_STEP_NAME = re.compile(r"[0-9]{1,12}")

# Every file a run folder holds (besides frames/, weights/ and tensorboard/): an output of another command must never land on one.
RUN_FILES = frozenset({CONFIG, METRICS, CHECKPOINT, TARGET, SAMPLES, FINAL, MP4, GIF, LOCK, ENDING})
_RUN_FILES_FOLDED = frozenset(name.casefold() for name in RUN_FILES)


def is_run_file(path: str | os.PathLike) -> bool:
    """Whether `path` is one of a run folder's own files (config, checkpoint, frames, videos, ...), existing or not."""
    p = Path(path).resolve()
    folder = p.parent
    # Names compared without case: on a case-insensitive file system (macOS, Windows) Target.png is target.png.
    if folder.name.casefold() in (FRAMES, WEIGHTS, TENSORBOARD) and (folder.parent / CONFIG).is_file():
        return True
    return p.name.casefold() in _RUN_FILES_FOLDED and (folder / CONFIG).is_file()


def check_new_output(path: Path, suffix: str, force: bool, error: type[OverfitError]) -> None:
    """Refuse an output that would destroy something: a run folder's own file always, an existing file unless `force`,
    and a name whose extension is not `suffix` (`field` "output")."""
    if path.is_dir():
        raise error(f"{path} is a folder; give a file name", field="output")
    if is_run_file(path):
        raise error(f"{path} is a file of the run folder {path.resolve().parent}; write the output elsewhere", field="output")
    if path.suffix.lower() != suffix:
        raise error(f"{path} must end in {suffix}", field="output")
    if path.exists() and not force:
        raise error(f"{path} exists and is replaced only when forced; choose another name", field="output")


def auto_name(preset: str) -> str:
    """preset-YYYYmmdd-HHMMSS as a plain folder name: `preset` is free text ('../x', 'my run'), so it is made one."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", preset[:64]).lstrip("._-") or "run"
    return f"{safe}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


class RunFolder:
    """One run's folder; `lock()` holds it for this process while training writes to it."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock: Any = None

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    # -- create, open, lock ---------------------------------------------------------

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str | None, preset: str) -> RunFolder:
        """A new, empty, locked run folder; an existing one is never reused."""
        runs_dir = Path(runs_dir)
        if name is not None and not NAME_PATTERN.fullmatch(name):
            raise RunFolderError(f"{name!r} is not a plain folder name (letters, digits, '.', '_', '-')", field="name")
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"cannot create runs folder {runs_dir}: {e.strerror or e}", field="runs_dir") from None
        if not os.access(runs_dir, os.W_OK | os.X_OK):
            raise RunFolderError(f"runs folder {runs_dir} is not writable", field="runs_dir")
        base = name or auto_name(preset)
        for attempt in range(1000):
            candidate = runs_dir / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                candidate.mkdir()
            except FileExistsError:
                if name is not None:
                    raise RunExistsError(f"run folder {candidate} already exists; resume it or choose another name",
                                         str(candidate)) from None
                continue
            except OSError as e:
                raise RunFolderError(f"cannot create run folder {candidate}: {e.strerror or e}", field="runs_dir") from None
            folder = cls(candidate)
            folder.lock()
            return folder
        raise RunFolderError(f"cannot find a free run name like {base} in {runs_dir}", field="name")

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunFolder:
        """An existing run folder, to resume or read (not locked)."""
        p = Path(path)
        if not p.exists():
            raise RunFolderError(f"run folder {p} does not exist")
        if not p.is_dir():
            raise RunFolderError(f"{p} is not a run folder (not a directory)")
        if not (p / CONFIG).is_file():
            raise RunFolderError(f"{p} is not a run folder: it has no {CONFIG}")
        return cls(p)

    def lock(self) -> None:
        """Hold the folder for this process (a second trainer on the same run is refused), and sweep stale temporaries.
        A folder whose frames/, weights/ or lock file is a link is refused: writing there would reach outside it."""
        if self._lock is not None:
            return
        try:
            plain_folder(self.path, FRAMES), plain_folder(self.path, WEIGHTS)
            self._lock = take_lock(self.path / LOCK)
        except NotPlainFile as e:
            raise RunFolderError(f"run folder {self.path} is not used: {e}") from None
        except OSError as e:
            raise RunFolderError(f"cannot write to run folder {self.path}: {e.strerror or e}") from None
        if self._lock is None:
            raise RunBusyError(f"run folder {self.path} is in use by another overfit process")
        remove_stale_temporaries([self.path, self.path / FRAMES, self.path / WEIGHTS])  # checked above: no links

    def unlock(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    @property
    def locked(self) -> bool:
        return self._lock is not None

    def held_elsewhere(self) -> bool:
        """True if another process (or another RunFolder of this one) holds the folder's lock (`safefiles.lock_taken`)."""
        return self._lock is None and lock_taken(self.path / LOCK)

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unlock()

    # -- reading ----------------------------------------------------------------------

    def _safely(self, read: Callable[..., T], *parts: str, **options: Any) -> T:
        """`read` (a `safefiles` reader) on `parts` of the folder; what it refuses is one RunFolderError (missing: FileNotFoundError)."""
        try:
            return read(self.path, *parts, **options)
        except FileNotFoundError:
            raise
        except OSError as e:
            raise RunFolderError(f"{self.path}: {e}" if isinstance(e, NotPlainFile) else
                                 f"cannot read {self.path.joinpath(*parts)}: {e.strerror or e}") from None

    def config(self) -> RunConfig:
        try:
            return RunConfig.from_json(self._safely(read_plain, CONFIG, kind="config", follow_folder=True).decode())
        except ConfigError as e:
            raise RunFolderError(f"{self.path / CONFIG}: {e}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise RunFolderError(f"cannot read {self.path / CONFIG}: {e}") from None

    def target(self) -> Any:
        """The picture exactly as it was fitted (a `targets.Target`), from the run's own copy."""
        from .modes import get_mode
        from .targets import make_target

        data = self.config().data
        path = self.path / TARGET
        try:
            with self._safely(open_plain_file, TARGET, kind="picture", follow_folder=True) as f:
                picture = read_png(f, color=get_mode(data.mode).color, max_pixels=data.max_pixels)
        except (OSError, ValueError) as e:
            raise RunFolderError(f"cannot read the run's target picture {path}: {e}") from None
        return make_target(picture, data.image or f"text {data.text!r}", data.mode)

    def target_size(self) -> tuple[int, int]:
        """(height, width) of the run's picture, read from the PNG header only; (0, 0) if unreadable."""
        from PIL import Image

        try:
            with self._safely(open_plain_file, TARGET, kind="picture", follow_folder=True) as f, Image.open(f) as img:
                w, h = img.size
            return h, w
        except (OSError, RunFolderError, Image.DecompressionBombError):
            return 0, 0

    def has_checkpoint(self) -> bool:
        return os.path.lexists(self.path / CHECKPOINT)  # a link or FIFO there is a checkpoint `checkpoint()` refuses

    def checkpoint(self, resume: bool = True) -> dict[str, Any]:
        """The checkpoint's tensors and numbers, loaded without unpickling arbitrary objects.

        Checked for every key a resume needs, or with `resume=False` only for the model's. Read only up to the size a
        checkpoint of config.json's model has (`safefiles.checkpoint_limit`): callers check that config's budget first.
        """
        import torch

        from .budget import default_budget, estimate

        path = self.path / CHECKPOINT
        if not self.has_checkpoint():
            raise RunFolderError(f"run folder {self.path} has no {CHECKPOINT}; nothing to resume")
        if tuple(int(n) for n in re.findall(r"\d+", torch.__version__)[:2]) < SAFE_TORCH:  # '2.13.0+cpu' -> (2, 13)
            raise RunFolderError(f"checkpoint {path} not loaded: torch {torch.__version__} loads a crafted checkpoint unsafely "
                                 f"(CVE-2025-32434, CVE-2026-24747); install torch>={'.'.join(map(str, SAFE_TORCH))}")
        try:
            shape = self.target_size()
            most = checkpoint_limit(estimate(self.config(), shape if shape[0] else None, training=False).parameters)
        except RunFolderError:  # no config.json to size its model by: it is loaded whole, so the memory budget bounds it
            most = default_budget()
        f = self._safely(open_plain_file, CHECKPOINT, kind="checkpoint", max_bytes=most, follow_folder=True)
        try:
            with f:
                state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as e:  # torch raises many types for a corrupt file
            raise RunFolderError(f"checkpoint {path} cannot be read: {first_line(e)}") from None
        if not isinstance(state, dict) or state.get("format") not in (CHECKPOINT_FORMAT, *OLDER_CHECKPOINT_FORMATS):
            raise RunFolderError(f"checkpoint {path} is not an overfit checkpoint")
        if resume and state["format"] != CHECKPOINT_FORMAT:
            raise RunFolderError(f"run {self.path} was trained by an older overfit that drew its batches another way, so it cannot "
                                 "continue exactly; render, export and inspect still read it: train it again under a new name to go on")
        missing = [key for key in (CHECKPOINT_KEYS if resume else MODEL_KEYS) if key not in state]
        if missing:
            raise RunFolderError(f"checkpoint {path} lacks {', '.join(missing)}; it cannot be {'resumed' if resume else 'used'}")
        return state

    def metrics(self) -> list[dict[str, Any]]:
        """Every evaluation record of the run, in order (a line cut short by a crash ends the list)."""
        try:
            text = self._safely(read_plain, METRICS, kind="metrics", follow_folder=True).decode(errors="replace")  # a damaged byte ends the list at its line
        except FileNotFoundError:
            return []
        records = []
        for line in text.splitlines():
            line = line.strip()
            if line:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # everything before it stands
                if not isinstance(record, dict):
                    break
                records.append(record)
        return records

    def frame_path(self, step: int) -> Path:
        return self.path / FRAMES / f"{step:08d}.png"

    def _steps(self, name: str, suffix: str) -> list[int]:
        folder = self._safely(plain_folder, name)  # a link there would list (and `rewind` empty) a folder elsewhere
        return [] if folder is None else sorted(int(p.stem) for p in folder.glob(f"*{suffix}") if _STEP_NAME.fullmatch(p.stem))

    def frame_steps(self) -> list[int]:
        """Steps that have a frame on disk, in order."""
        return self._steps(FRAMES, ".png")

    def weights_path(self, step: int) -> Path:
        return self.path / WEIGHTS / f"{step:08d}.safetensors"

    def weight_steps(self) -> list[int]:
        """Steps whose weights are on disk, in order."""
        return self._steps(WEIGHTS, ".safetensors")

    def read_weights(self, step: int, shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, Any]:
        """The model's state dict at `step` (float32 tensors), as `write_weights` stored it.

        `shapes`: the model's tensors ({name: shape}), checked against the file's header before its data is read.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load

        path = self.weights_path(step)
        if not os.path.lexists(path):
            raise RunFolderError(f"{self.path} has no weights at step {step:,} (steps with weights: "
                                 f"{', '.join(f'{s:,}' for s in self.weight_steps()[-5:]) or 'none'})")
        try:
            with self._safely(open_plain_file, WEIGHTS, path.name, kind="weights", follow_folder=True) as f:
                state = load(read_safetensors(f, f"{WEIGHTS}/{path.name}", shapes)[0])
        except (SafetensorError, ValueError, OSError) as e:
            raise RunFolderError(f"{path} is unreadable: {first_line(e)}") from None
        return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}

    def read_frames(self, steps: list[int]) -> StoredFrames:
        """(step, uint8 prediction: (H, W), or (H, W, 3) for rgb runs) for each of `steps` that has a frame on disk.

        A sequence that reads each PNG when its item is accessed (`StoredFrames`), never all at once.
        """
        def read(path: Path) -> Any:
            with self._safely(open_plain_file, FRAMES, path.name, kind="picture", follow_folder=True) as f:
                return read_png(f)

        return StoredFrames([(step, self.frame_path(step)) for step in steps if is_plain_file(self.frame_path(step))], read)

    def ending(self, records: list[dict[str, Any]] | None = None) -> Ending | None:
        """How training last stopped (`endings`), or None while it never has (or is training now).

        A record older than the run's last evaluation no longer describes it (another
        version of overfit trained it further without removing the record): None then.
        A run with no record that reached its last step with its final picture and videos
        written finished before the record was written (or before records existed).
        `records`: the run's `metrics()` where the caller has read them already.
        """
        records = self.metrics() if records is None else records
        last = records[-1].get("step", 0) if records else 0
        ending = endings.read(self.path)
        if ending is not None and ending.step >= last:
            return ending
        try:
            steps = self.config().schedule.steps
        except RunFolderError:
            return None
        if records and last >= steps and all((self.path / name).is_file() for name in (FINAL, MP4, GIF)):
            return Ending("finished", last, f"trained all {steps:,} steps")
        return None

    def finished(self, steps: int | None = None, records: list[dict[str, Any]] | None = None) -> bool:
        """Whether the run is done: it trained every one of `steps` (default: its config's) or stopped early on purpose.

        The one answer to "is this run done?": a finished run is not trained again unless its
        budget is raised; a diverged, failed or interrupted one resumes from its checkpoint.
        """
        return self._done(self.ending(records), steps)

    def _done(self, ending: Ending | None, steps: int | None) -> bool:
        if ending is None:
            return False
        if steps is None:
            try:
                steps = self.config().schedule.steps
            except RunFolderError:
                return False
        return ending.done(steps)

    def error(self, records: list[dict[str, Any]] | None = None) -> dict[str, Any] | None:
        """Why training last stopped with a problem (diverged or failed), {"error": reason, "step": step}, or None."""
        ending = self.ending(records)
        return {"error": ending.reason, "step": ending.step} if ending is not None and ending.failed else None

    def status(self, records: list[dict[str, Any]] | None = None) -> str:
        """'new' (nothing trained yet), 'paused' (a checkpoint to continue from), 'done' (`finished`)
        or 'failed' (diverged or stopped with an error, `error()` says why, and has not continued since).
        `records`: the run's `metrics()` where the caller has read them already."""
        records = self.metrics() if records is None else records
        ending = self.ending(records)
        if ending is not None and ending.failed:
            return "failed"
        if self._done(ending, None):
            return "done"
        return "paused" if self.has_checkpoint() else "new"

    # -- writing (the folder must be locked) ------------------------------------------------------

    def write_ending(self, ending: Ending) -> None:
        """Record how training stopped (`endings`), so the run says so after a restart, in every front end."""
        write_atomic(self.path / ENDING, ending.to_json())

    def clear_ending(self) -> None:
        """Forget how training last stopped (it trains again), including the records older versions left."""
        for name in (ENDING, *(legacy for legacy, _ in endings.LEGACY)):
            try:
                (self.path / name).unlink()
            except FileNotFoundError:
                pass

    def write_config(self, cfg: RunConfig) -> None:
        write_atomic(self.path / CONFIG, cfg.to_json())

    def write_picture(self, name: str, picture: Any) -> None:
        save_png(picture, self.path / name)

    def write_frame(self, step: int, picture: Any) -> None:
        (self.path / FRAMES).mkdir(exist_ok=True)
        save_png(picture, self.frame_path(step))

    def write_weights(self, step: int, state: dict[str, Any]) -> None:
        """The model's state dict at `step`, floating tensors in half precision (a picture of the network, not a checkpoint)."""
        from safetensors.torch import save

        (self.path / WEIGHTS).mkdir(exist_ok=True)
        tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().cpu() for k, v in state.items()}
        write_atomic(self.weights_path(step), save(tensors))

    def append_metrics(self, record: dict[str, Any]) -> None:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)  # never appended through a link
        with open(os.open(self.path / METRICS, flags, 0o666), "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())  # on disk before the checkpoint that follows it, which is synced too

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        import torch

        buf = io.BytesIO()
        torch.save(state, buf)
        write_atomic(self.path / CHECKPOINT, buf.getvalue())

    def rewind(self, step: int) -> list[dict[str, Any]]:
        """Drop every record and frame after `step` (written after the checkpoint being resumed); the records kept."""
        history = [r for r in self.metrics() if r.get("step", 0) <= step]
        write_atomic(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in history))
        later = [self.frame_path(s) for s in self.frame_steps() if s > step]
        for path in later + [self.weights_path(s) for s in self.weight_steps() if s > step]:
            path.unlink()
        return history
