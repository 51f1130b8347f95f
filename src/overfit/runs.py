"""Run folders: what a training run leaves on disk, and how it is continued.

    runs/<name>/
      config.json      the complete RunConfig (`overfit train --config` re-runs it)
      target.png       the picture as fitted (8-bit gray, or RGB), so a run resumes without its source
      samples.png      one training batch, coloured by label
      metrics.jsonl    one JSON line per evaluation
      frames/          the dense prediction at each evaluation, 8-bit PNG (gray: P(background) or value; RGB)
      checkpoint.pt    model, optimizer, random generators, step and config
      final.png        target and prediction side by side      (when training ends)
      progress.mp4/gif one frame per evaluation, captioned      (when training ends)

Every file is written to a temporary name and renamed into place, so an
interrupted or crashed run never leaves a half-written file, and an existing
run folder is never reused except to resume it.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from . import video
from .config import ConfigError, RunConfig
from .errors import OverfitError
from .targets import Target, make_target
from .training import Event, Trainer

CONFIG, METRICS, CHECKPOINT, TARGET = "config.json", "metrics.jsonl", "checkpoint.pt", "target.png"
SAMPLES, FINAL, MP4, GIF, FRAMES = "samples.png", "final.png", "progress.mp4", "progress.gif", "frames"
CHECKPOINT_FORMAT = "overfit-checkpoint-1"
_UMASK = os.umask(0)
os.umask(_UMASK)
# A run folder name: a plain name, no separators, no leading dot (also the lab's run-id rule).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class RunFolderError(OverfitError):
    """A run folder that cannot be created, read or continued."""


# -- small file helpers --------------------------------------------------------

def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp's 0600 would hide run files from other users
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _png_bytes(picture: np.ndarray) -> bytes:
    """PNG of a uint8 (H, W) gray or (H, W, 3) RGB picture."""
    buf = io.BytesIO()
    Image.fromarray(picture, mode="L" if picture.ndim == 2 else "RGB").save(buf, format="PNG")
    return buf.getvalue()


def save_checkpoint(run_dir: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    write_atomic(run_dir / CHECKPOINT, buf.getvalue())


def load_checkpoint(run_dir: Path) -> dict[str, Any]:
    """The checkpoint's tensors and numbers; loaded without unpickling arbitrary objects."""
    path = run_dir / CHECKPOINT
    if not path.is_file():
        raise RunFolderError(f"run folder {run_dir} has no {CHECKPOINT}; nothing to resume")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a corrupt file
        raise RunFolderError(f"checkpoint {path} cannot be read: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise RunFolderError(f"checkpoint {path} is not an overfit checkpoint")
    return state


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """Every evaluation record of a run, in order."""
    path = run_dir / METRICS
    if not path.exists():
        return []
    records = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if line:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a line cut short by a crash: everything before it stands
    return records


def auto_name(preset: str) -> str:
    return f"{preset}-{_dt.datetime.now().strftime('%Y%m%d-%H%M%S')}"


# -- the run folder --------------------------------------------------------------

class RunFolder:
    """One run's folder, held exclusively (a lock file) while training writes to it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock: Any = None

    @classmethod
    def create(cls, runs_dir: str | os.PathLike, name: str | None, preset: str) -> RunFolder:
        """A new, empty run folder; an existing one is never reused."""
        runs_dir = Path(runs_dir)
        if name is not None and not NAME_PATTERN.match(name):
            raise RunFolderError(f"run name {name!r} is not a plain folder name (letters, digits, '.', '_', '-')")
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunFolderError(f"cannot create runs folder {runs_dir}: {e.strerror or e}") from None
        if not os.access(runs_dir, os.W_OK | os.X_OK):
            raise RunFolderError(f"runs folder {runs_dir} is not writable")
        base = name or auto_name(preset)
        for attempt in range(1000):
            candidate = runs_dir / (base if attempt == 0 else f"{base}-{attempt + 1}")
            try:
                candidate.mkdir()
            except FileExistsError:
                if name is not None:
                    raise RunFolderError(
                        f"run folder {candidate} already exists; continue it with --resume {candidate} or choose another --name"
                    ) from None
                continue
            except OSError as e:
                raise RunFolderError(f"cannot create run folder {candidate}: {e.strerror or e}") from None
            folder = cls(candidate)
            folder.lock()
            return folder
        raise RunFolderError(f"cannot find a free run name like {base} in {runs_dir}")

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunFolder:
        """An existing run folder, to resume or read."""
        p = Path(path)
        if not p.exists():
            raise RunFolderError(f"run folder {p} does not exist")
        if not p.is_dir():
            raise RunFolderError(f"{p} is not a run folder (not a directory)")
        if not (p / CONFIG).is_file():
            raise RunFolderError(f"{p} is not a run folder: it has no {CONFIG}")
        return cls(p)

    def lock(self) -> None:
        """Hold the folder for this process; a second trainer on the same run is refused."""
        try:
            fd = os.open(self.path / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
        except OSError as e:
            raise RunFolderError(f"cannot write to run folder {self.path}: {e.strerror or e}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunFolderError(f"run folder {self.path} is in use by another overfit process") from None
        self._lock = fd

    def unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -- reading ----------------------------------------------------------------

    def config(self) -> RunConfig:
        try:
            return RunConfig.from_json((self.path / CONFIG).read_text())
        except ConfigError as e:
            raise RunFolderError(f"{self.path / CONFIG}: {e}") from None

    def target(self) -> Target:
        """The picture exactly as it was fitted, from the run's own copy."""
        path = self.path / TARGET
        data = self.config().data
        try:
            with Image.open(path) as img:
                picture = np.asarray(img.convert("RGB" if data.mode == "rgb" else "L"))
        except (OSError, ValueError) as e:
            raise RunFolderError(f"cannot read the run's target picture {path}: {e}") from None
        return make_target(picture, data.image or f"text {data.text!r}", data.mode)

    # -- writing ----------------------------------------------------------------

    def start(self, trainer: Trainer) -> None:
        """Write what a new run knows before its first step."""
        write_atomic(self.path / CONFIG, trainer.cfg.to_json())
        write_atomic(self.path / TARGET, _png_bytes(trainer.target.image))
        yx, labels = trainer.preview_batch()
        video.save_samples_plot(yx, labels, trainer.target.height, trainer.target.width, self.path / SAMPLES)
        (self.path / FRAMES).mkdir(exist_ok=True)

    def prepare_resume(self, trainer: Trainer, state: dict[str, Any]) -> None:
        """Load a checkpoint into `trainer`, dropping any record written after it.

        The trainer's config (which may extend the step budget) becomes the run's config.
        """
        trainer.load_state_dict(state)
        write_atomic(self.path / CONFIG, trainer.cfg.to_json())
        step = trainer.step
        history = [r for r in read_metrics(self.path) if r.get("step", 0) <= step]
        write_atomic(self.path / METRICS, "".join(json.dumps(r) + "\n" for r in history))
        for frame in (self.path / FRAMES).glob("*.png"):
            if frame.stem.isdigit() and int(frame.stem) > step:
                frame.unlink()
        trainer.history = history

    def __call__(self, event: Event) -> None:
        """The callback that records a run: metrics, frames, checkpoints, final pictures."""
        if event.kind == "eval":
            with open(self.path / METRICS, "a") as f:
                f.write(json.dumps(event.metrics) + "\n")
            assert event.prediction is not None
            write_atomic(self.frame_path(event.step), _png_bytes(video.prob_to_gray(event.prediction)))  # [0, 1] -> uint8, any shape
            save_checkpoint(self.path, event.trainer.state_dict())
        elif event.kind == "interrupt":
            save_checkpoint(self.path, event.trainer.state_dict())
        elif event.kind == "end":
            self.finish(event.trainer)

    def finish(self, trainer: Trainer) -> None:
        """final.png and the progress videos, from the frames and metrics on disk."""
        history = read_metrics(self.path)
        by_step = {r["step"]: r for r in history}
        stepped = self.read_frames([r["step"] for r in history])
        if not stepped:
            return
        frames = [picture for _, picture in stepped]
        captions = [caption(trainer.cfg.preset, by_step[step]) for step, _ in stepped]
        binary = trainer.cfg.data.mode == "binary"
        values = trainer.target.values
        target = trainer.target.labels if binary else (values[:, :, 0] if values.shape[2] == 1 else values)
        video.save_final_plot(target, frames[-1].astype(np.float32) / 255.0, self.path / FINAL,
                              title=caption(trainer.cfg.preset, history[-1]),
                              prediction_name="prediction (probability of background)" if binary else "prediction")
        video.write_progress(frames, captions, self.path / MP4, self.path / GIF)

    # -- frames -----------------------------------------------------------------

    def frame_path(self, step: int) -> Path:
        return self.path / FRAMES / f"{step:08d}.png"

    def read_frames(self, steps: list[int]) -> list[tuple[int, np.ndarray]]:
        """(step, uint8 prediction: (H, W), or (H, W, 3) for rgb runs) for each of `steps` that has a frame on disk."""
        out = []
        for step in steps:
            path = self.frame_path(step)
            if path.is_file():
                with Image.open(path) as img:
                    out.append((step, np.asarray(img.convert("RGB" if img.mode == "RGB" else "L"))))
        return out


def caption(preset: str, record: dict[str, Any]) -> str:
    """The text written on a progress frame."""
    if "dense_psnr" in record:
        return f"{preset}   step {record['step']:,}   PSNR {record['dense_psnr']:.2f} dB"
    return f"{preset}   step {record['step']:,}   accuracy {100 * record['dense_acc']:.1f} %"
