"""The lab's runs: ordinary run folders, trained by the lab's worker thread, watched live.

A `LabRun` is one folder under runs_dir, seen by the lab. It holds a `Trainer` (and
the folder's lock) only while it trains: pausing saves the checkpoint and lets go
of both, so a paused lab run can be continued from the command line
(`overfit train --resume runs/NAME`) with the lab still open, and the lab picks up
whatever the command line left when it starts the run again.

Training happens in short chunks (`Trainer.run(until=...)`, about 0.1 s each) on the
one `worker.Worker` thread, the runs taking turns. The chunk boundaries are where
the live view is fed (previews, curves) and where a pause takes effect, whatever
`schedule.log_every` says. The trainer reports a chunk boundary as an "interrupt"
event; the folder only records the last one, when the run really stops, so a paused
run has its checkpoint and a running one does not write one every tenth of a second.

The web layer (`app`) only calls `RunManager` methods and reads `LabRun.summary()` /
`detail()`; those are safe from any thread.
"""

from __future__ import annotations

import base64
import fcntl
import logging
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ConfigError, RunConfig
from ..errors import OverfitError
from ..runs import CHECKPOINT, CONFIG, FINAL, FRAMES, GIF, MP4, TARGET, RunFolder, RunFolderError, load_checkpoint, read_metrics
from ..runs import NAME_PATTERN as RUN_ID  # the run-folder name rule
from ..training import Event, Trainer, TrainingDiverged
from . import pictures
from .errors import LabError, config_error
from .stream import Hub
from .worker import Worker

log = logging.getLogger("overfit.lab")

MAX_ID_LENGTH = 200
# Seconds of training between chunk boundaries: previews and curves update ~10 times a second
# (the issue asks for at least 5), and a pause takes effect within this (plus an evaluation).
CHUNK_SECONDS = 0.1  # = 1 / PREVIEW_FPS
# Longest round of turns when several runs train: each run then still gets a turn, and so a
# preview, at least 5 times a second (the floor), at the price of shorter chunks.
ROUND_SECONDS = 0.2
# Previews per second per run, and the share of the run's time they may take. The preview's
# size follows from both: drawing costs ~0.85 us per pixel for relu_1 on 2 cores (so ~12k pixels,
# 200 x 60 for OVERFIT) and ~8x that for siren's wider layers (so a coarser picture, still live).
# If drawing is still too slow (a busy machine), previews come less often instead.
PREVIEW_FPS = 10.0
PREVIEW_SHARE = 0.1
# Points kept per curve; beyond this every other point is dropped (the curve keeps its shape).
MAX_CURVE_POINTS = 4000
# How long a pause waits for the run to reach a chunk boundary (an evaluation or the final video may be in between).
JOIN_SECONDS = 120.0

# What the browser may download, by a fixed name: (file in the run folder, media type).
DOWNLOADS: dict[str, tuple[str, str]] = {
    "video": (MP4, "video/mp4"),
    "gif": (GIF, "image/gif"),
    "final": (FINAL, "image/png"),
    "config": (CONFIG, "application/json"),
    "checkpoint": (CHECKPOINT, "application/octet-stream"),
}

# Headline metric of an evaluation record: accuracy for binary runs, PSNR for gray/rgb.
HEADLINE_METRICS = ("dense_acc", "dense_psnr")


def headline(record: dict[str, Any]) -> str | None:
    return next((k for k in HEADLINE_METRICS if k in record), None)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class Curve:
    """(step, value) points, thinned by halves past MAX_CURVE_POINTS so a long run stays light."""

    def __init__(self) -> None:
        self.points: list[tuple[int, float]] = []
        self.stride = 1  # keep every stride-th point offered
        self._offered = 0

    def add(self, step: int, value: Any) -> None:
        if not _finite(value):
            return
        self._offered += 1
        if (self._offered - 1) % self.stride:
            return
        self.points.append((int(step), float(value)))
        if len(self.points) > MAX_CURVE_POINTS:
            self.points = self.points[::2]
            self.stride *= 2


def _held_elsewhere(path: Path) -> bool:
    """True if another process holds the run folder's lock (e.g. `overfit train --resume` on it)."""
    lock = path / ".lock"
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops our probe lock too
    return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _target_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    try:
        with Image.open(path / TARGET) as img:
            w, h = img.size
        return h, w
    except OSError:
        return 0, 0


class LabRun:
    """One run folder as the lab sees it: state for the page, and its training thread."""

    def __init__(self, path: Path, cfg: RunConfig, hub: Hub, upload_id: Callable[[str | None], str | None]) -> None:
        self.id = path.name
        self.path = path
        self.cfg = cfg
        self.hub = hub
        self._upload_id = upload_id
        self.status = "new"  # new | running | paused | done | failed | busy
        self.error: str | None = None
        self.step = 0
        self.until: int | None = None  # Step: stop at this step (the next evaluation)
        self.loss: float | None = None
        self.steps_per_s: float | None = None
        self.last_eval: dict[str, Any] | None = None
        self.loss_curve = Curve()
        self.metric_curve = Curve()
        self.frame_steps: list[int] = []
        self.height, self.width = _target_size(path)
        self._lock = threading.Lock()  # guards the fields above against the worker thread
        # Set and cleared on the worker thread only: a run trains while it holds a trainer.
        self._trainer: Trainer | None = None
        self._folder: RunFolder | None = None
        self._boundary: Event | None = None  # the latest chunk-boundary "interrupt": recorded only if the run stops there
        self._pause = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()
        self._worker: Worker | None = None
        self._chunk = 10
        self._pending_points: list[tuple[int, float]] = []
        self._next_tick = 0.0
        self._next_preview = 0.0
        self._preview_pixels = float(pictures.PREVIEW_PIXELS)

    # -- state from disk ----------------------------------------------------------------

    def load(self) -> None:
        """State from the folder: metrics, frames, checkpoint (for runs not training here)."""
        try:
            cfg = RunFolder.open(self.path).config()  # the command line may have raised schedule.steps
        except RunFolderError:
            cfg = self.cfg
        records = read_metrics(self.path)
        frames = sorted(int(p.stem) for p in (self.path / FRAMES).glob("*.png") if p.stem.isdigit())
        loss, metric = Curve(), Curve()
        for r in records:
            loss.add(r.get("step", 0), r.get("train_loss"))
            key = headline(r)
            if key:
                metric.add(r.get("step", 0), r.get(key))
        step = records[-1].get("step", 0) if records else 0
        if _held_elsewhere(self.path):
            status = "busy"
        elif step >= cfg.schedule.steps:
            status = "done"
        elif (self.path / CHECKPOINT).is_file():
            status = "paused"
        else:
            status = "new"
        with self._lock:
            if self.running:
                return
            self.cfg, self.step = cfg, step
            self.last_eval = records[-1] if records else None
            self.loss_curve, self.metric_curve, self.frame_steps = loss, metric, frames
            if not (self.status == "failed" and status == "paused"):  # keep the reason a failed run stopped
                self.status, self.error = status, None

    @property
    def running(self) -> bool:
        return self._trainer is not None

    # -- what the page sees ---------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        with self._lock:
            last = self.last_eval or {}
            key = headline(last) or ("dense_acc" if self.cfg.data.mode == "binary" else "dense_psnr")
            config = self.cfg.to_dict()
            upload = self._upload_id(self.cfg.data.image)
            # The browser never sees server paths: an uploaded picture is its upload id.
            config["data"]["image"] = None
            return {
                "id": self.id,
                "status": self.status,
                "error": self.error,
                "step": self.step,
                "steps": self.cfg.schedule.steps,
                "until": self.until,
                "preset": self.cfg.preset,
                "mode": self.cfg.data.mode,
                "metric": key,
                "metric_value": last.get(key),
                "loss": self.loss if self.loss is not None else last.get("train_loss"),
                "steps_per_s": self.steps_per_s if self.status == "running" else None,
                "height": self.height,
                "width": self.width,
                "upload": upload,
                "image_source": "upload" if upload else ("file" if self.cfg.data.image else None),
                "viewers": self.hub.viewers(self.id),
                "files": {name: (self.path / file).is_file() for name, (file, _) in DOWNLOADS.items()},
                "config": config,
            }

    def detail(self) -> dict[str, Any]:
        out = self.summary()
        with self._lock:
            out["curves"] = {"loss": list(self.loss_curve.points), "metric": list(self.metric_curve.points)}
            out["frames"] = list(self.frame_steps)
        return out

    def _publish_status(self) -> None:
        self.hub.publish(self.id, {"type": "status", "run": self.summary()})

    # -- training -------------------------------------------------------------------------

    def _open_trainer(self) -> tuple[Trainer, RunFolder]:
        """Lock the folder and build its trainer at the checkpoint (or at step 0 if it has none)."""
        folder = RunFolder.open(self.path)
        try:
            folder.lock()
        except RunFolderError:
            raise LabError(409, f"run {self.id} is being trained by another overfit process; wait for it or stop it") from None
        try:
            cfg = folder.config()
            trainer = Trainer(cfg, folder.target())
            if (self.path / CHECKPOINT).is_file():
                folder.prepare_resume(trainer, load_checkpoint(self.path))
            self.cfg = cfg
            return trainer, folder
        except OverfitError as e:
            folder.unlock()
            raise LabError(409, f"run {self.id} cannot continue: {e}") from None
        except BaseException:
            folder.unlock()
            raise

    def begin(self, until: int | None, worker: Worker) -> None:
        """Start training (on the worker thread; the manager checked the cap and that it is not running)."""
        trainer, folder = self._open_trainer()
        if trainer.step >= trainer.cfg.schedule.steps:
            folder.unlock()
            raise LabError(409, f"run {self.id} is finished (step {trainer.step:,} of {trainer.cfg.schedule.steps:,}); "
                                f"start a new run, or train it further from the command line: overfit train --resume {self.path.parent.name}/{self.id} --steps N")
        with self._lock:
            self.until = until
            self.status, self.error = "running", None
            self.step = trainer.step
            self._pause.clear()
            self._stopped.clear()
            self._trainer, self._folder, self._boundary = trainer, folder, None
        self._worker = worker
        worker.add(self)
        self._publish_status()

    def request_pause(self) -> None:
        self._pause.set()

    def join(self, timeout: float = JOIN_SECONDS) -> None:
        """Wait until the run has stopped (its checkpoint written, its folder unlocked)."""
        self._stopped.wait(timeout)

    def _goal(self, trainer: Trainer) -> int:
        steps = trainer.cfg.schedule.steps
        return steps if self.until is None else min(self.until, steps)

    def _on_event(self, event: Event) -> None:
        if event.kind == "interrupt":
            self._boundary = event
            return
        assert self._folder is not None
        self._folder(event)  # metrics, frames, checkpoints, final picture and video
        self._observe(event)

    def train_chunk(self) -> bool:
        """One turn on the worker thread: train ~CHUNK_SECONDS; False once the run has stopped."""
        trainer, folder = self._trainer, self._folder
        assert trainer is not None and folder is not None
        try:
            goal = self._goal(trainer)
            if self._pause.is_set() or trainer.step >= goal:
                return self._stop("done" if trainer.step >= trainer.cfg.schedule.steps else "paused")
            start, started = trainer.step, time.perf_counter()
            trainer.run(self._on_event, until=min(goal, trainer.step + self._chunk))
            self._adapt_chunk(trainer.step - start, time.perf_counter() - started, self._worker.turns if self._worker else 1)
            if trainer.step >= trainer.cfg.schedule.steps:
                return self._stop("done")
            return True
        except TrainingDiverged as e:
            kept = "; the last checkpoint is kept" if (self.path / CHECKPOINT).is_file() else ""
            return self._stop("failed", f"{e}{kept}")
        except Exception as e:  # a bug, not the user's input: keep the traceback in the server log
            log.exception("run %s failed", self.id)
            return self._stop("failed", f"internal error: {type(e).__name__}: {e}")

    def _stop(self, status: str, error: str | None = None) -> bool:
        """Leave the rotation: keep the checkpoint a paused run resumes from, let go of the folder."""
        trainer, folder = self._trainer, self._folder
        assert trainer is not None and folder is not None
        try:
            evaluated_here = bool(trainer.history) and trainer.history[-1].get("step") == trainer.step
            if status == "paused" and self._boundary is not None and not evaluated_here:
                folder(self._boundary)  # an evaluation at this step already wrote one
        except Exception as e:
            log.exception("run %s: saving the checkpoint failed", self.id)
            status, error = "failed", f"cannot save the checkpoint: {type(e).__name__}: {e}"
        finally:
            folder.unlock()
            with self._lock:
                self.status, self.error, self.until = status, error, None
                self.step = trainer.step
                self._flush_points()
                self._trainer = self._folder = self._boundary = None
            self._stopped.set()
        self._publish_status()
        return False

    def _adapt_chunk(self, steps: int, seconds: float, turns: int) -> None:
        if steps <= 0 or seconds <= 0:
            return
        wanted = steps * min(CHUNK_SECONDS, ROUND_SECONDS / max(1, turns)) / seconds
        # Geometric smoothing: one slow chunk (an evaluation, a compile) does not swing it.
        self._chunk = max(1, min(1_000_000, round(math.sqrt(self._chunk * wanted))))

    # -- events from the training thread ---------------------------------------------------

    def _observe(self, event: Event) -> None:
        if event.kind == "log":
            loss = event.metrics.get("loss")
            with self._lock:
                self.step = event.step
                self.loss = loss if _finite(loss) else self.loss
                self.steps_per_s = event.metrics.get("steps_per_s")
                if _finite(loss):
                    self.loss_curve.add(event.step, loss)
                    self._pending_points.append((event.step, loss))
            now = time.perf_counter()
            if now >= self._next_tick:
                # 0.75: chunk boundaries come every ~1/PREVIEW_FPS s with some jitter; a full interval
                # here would skip every other one and halve the rate.
                self._next_tick = now + 0.75 / PREVIEW_FPS
                with self._lock:
                    self._flush_points()
                if now >= self._next_preview and self.hub.viewers(self.id):
                    self._send_preview(event.trainer)
        elif event.kind == "eval":
            record = event.metrics
            key = headline(record)
            with self._lock:
                self.step = event.step
                self.last_eval = dict(record)
                if key:
                    self.metric_curve.add(event.step, record.get(key))
                if event.prediction is not None:
                    self.frame_steps.append(event.step)
                self._flush_points()
            self.hub.publish(self.id, {"type": "eval", "record": record, "metric": key,
                                       "frame": event.step if event.prediction is not None else None})

    def _flush_points(self) -> None:
        """Send the loss points gathered since the last tick (caller holds the lock)."""
        points, self._pending_points = self._pending_points, []
        self.hub.publish(self.id, {"type": "tick", "step": self.step, "loss": self.loss,
                                   "steps_per_s": self.steps_per_s, "points": points})

    def _send_preview(self, trainer: Trainer) -> None:
        """The network drawn small, now, in the training thread: no other thread ever touches the model."""
        from ..render import Region, predict

        started = time.perf_counter()
        h, w = trainer.target.height, trainer.target.width
        ph, pw = pictures.preview_size(h, w, round(self._preview_pixels))
        model = trainer.model
        model.eval()  # BatchNorm: use the running statistics, do not update them
        try:
            values = predict(model, trainer.cfg.data.mode, ph, pw, Region.whole(h, w), device=trainer.device)
        finally:
            model.train()
        data = pictures.png(pictures.show(values, trainer.cfg.data.mode))
        cost = time.perf_counter() - started
        self._next_preview = started + max(0.75 / PREVIEW_FPS, cost / PREVIEW_SHARE)
        # Size the next preview to fit its time budget (smoothed: one slow draw does not halve it).
        fits = PREVIEW_SHARE / PREVIEW_FPS / max(cost / (ph * pw), 1e-9)
        fits = min(max(fits, pictures.MIN_PREVIEW_PIXELS), pictures.MAX_PREVIEW_PIXELS)
        self._preview_pixels = 0.7 * self._preview_pixels + 0.3 * fits
        self.hub.publish(self.id, {"type": "preview", "step": trainer.step, "width": pw, "height": ph,
                                   "png": base64.b64encode(data).decode("ascii")}, latest_only=True)


class RunManager:
    """All runs in runs_dir, at most `max_runs` of them training at once."""

    def __init__(self, runs_dir: Path, hub: Hub, max_runs: int, upload_id: Callable[[str | None], str | None]) -> None:
        self.runs_dir = runs_dir
        self.hub = hub
        self.max_runs = max_runs
        self._upload_id = upload_id
        self._runs: dict[str, LabRun] = {}
        self._lock = threading.Lock()
        self.worker = Worker()

    # -- finding runs ---------------------------------------------------------------------

    def _path(self, run_id: str) -> Path:
        """The folder of `run_id`, or LabError 404: only plain names directly inside runs_dir."""
        if not isinstance(run_id, str) or len(run_id) > MAX_ID_LENGTH or not RUN_ID.match(run_id):
            raise LabError(404, "no such run (run ids are plain folder names)")
        path = self.runs_dir / run_id
        if path.is_symlink() or not (path / CONFIG).is_file() or path.resolve().parent != self.runs_dir.resolve():
            raise LabError(404, f"no run named {run_id!r} in the runs folder")
        return path

    def get(self, run_id: str) -> LabRun:
        path = self._path(run_id)
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                try:
                    cfg = RunFolder.open(path).config()
                except RunFolderError as e:
                    raise LabError(409, f"run {run_id} cannot be read: {e}") from None
                run = self._runs[run_id] = LabRun(path, cfg, self.hub, self._upload_id)
        if not run.running:
            run.load()
        return run

    def list(self) -> list[dict[str, Any]]:
        """Every run folder in runs_dir (a folder with config.json), newest first."""
        out = []
        if self.runs_dir.is_dir():
            folders = [p for p in self.runs_dir.iterdir() if RUN_ID.match(p.name) and (p / CONFIG).is_file()]
            # target.png is written once, when the folder is made (config.json is rewritten on resume).
            for path in sorted(folders, key=lambda p: _mtime(p / TARGET), reverse=True):
                try:
                    out.append(self.get(path.name).summary())
                except LabError:
                    continue  # unreadable folders are left out of the list, not fatal
        return out

    def running(self) -> list[LabRun]:
        with self._lock:
            return [r for r in self._runs.values() if r.running]

    # -- changing runs --------------------------------------------------------------------

    def create(self, cfg: RunConfig, name: str | None = None) -> LabRun:
        """A new run folder for `cfg` (config, target, samples written; not started)."""
        if name is not None and (len(name) > MAX_ID_LENGTH or not RUN_ID.match(name)):
            raise LabError(422, "must be a plain folder name: letters, digits, '.', '_', '-', not starting with '.' or '-'", field="name")
        path = self.worker.call(self._create, cfg, name)
        return self.get(path.name)

    def _create(self, cfg: RunConfig, name: str | None) -> Path:
        try:
            with warnings.catch_warnings():
                # A one-class picture trains fine (and instantly); the page shows its accuracy.
                warnings.simplefilter("ignore")
                trainer = Trainer(cfg)
        except ConfigError as e:
            raise config_error(e) from None
        except OverfitError as e:
            raise _target_error(cfg, e) from None
        try:
            folder = RunFolder.create(self.runs_dir, name, cfg.preset)
        except RunFolderError as e:
            raise LabError(409 if "exists" in str(e) else 500, str(e).replace(str(self.runs_dir), "the runs folder"), field="name") from None
        try:
            folder.start(trainer)
        finally:
            folder.unlock()
        return folder.path

    def start(self, run_id: str, until: int | None = None) -> LabRun:
        """Train `run_id` (to the end, or to step `until`); a running run just drops its `until`."""
        run = self.get(run_id)
        with self._lock:
            if run.running:
                run.until = until if until is not None else None
                return run
            busy = [r for r in self._runs.values() if r.running]
            if len(busy) >= self.max_runs:
                raise LabError(429, f"{len(busy)} run(s) are already training, the most this lab allows at once "
                                    f"(--max-runs {self.max_runs}); pause one, or wait for one to finish")
            self.worker.call(run.begin, until, self.worker)
        return run

    def step(self, run_id: str) -> LabRun:
        """Train one evaluation interval: up to the next evaluation step, then pause."""
        run = self.get(run_id)
        every = run.cfg.schedule.eval_every
        target = min((run.step // every + 1) * every, run.cfg.schedule.steps)
        return self.start(run_id, until=target)

    def pause(self, run_id: str) -> LabRun:
        """Stop at the next chunk boundary and wait for the checkpoint."""
        run = self.get(run_id)
        run.request_pause()
        run.join()
        return run

    def reset(self, run_id: str) -> LabRun:
        """A fresh run from the same config; the old folder is kept as it is (never reused)."""
        run = self.get(run_id)
        if run.running:
            self.pause(run_id)
        return self.create(run.cfg)

    def shutdown(self) -> None:
        """Pause every run (each saves its checkpoint), so all of them can be resumed later; stop the worker."""
        runs = self.running()
        for run in runs:
            run.request_pause()
        for run in runs:
            run.join()
        self.worker.close()


def _target_error(cfg: RunConfig, e: OverfitError) -> LabError:
    """A Trainer construction error (picture, device) as 422 naming the input to blame."""
    from ..training import DeviceError

    text = str(e)
    if isinstance(e, DeviceError):
        return LabError(422, text, field="device")
    if cfg.data.image is not None:
        return LabError(422, text.replace(cfg.data.image, "the uploaded picture"), field="upload")
    return LabError(422, text, field="data.text")
