"""One run folder as the lab sees it: its state for the page, read from disk or followed live.

A `LabRun` is an ordinary run folder under runs_dir. While it does not train here,
its state comes from the folder (`RunFolder`: config, metrics, frames, checkpoint,
lock), so runs made or continued by `overfit train` show as they are on disk. While
it trains (`turns.Training`), the training thread folds each event into the same
state and sends it to the page's live views (`stream.Hub`): loss points in ticks,
evaluations, previews and status changes.

`summary()` and `detail()` are what the page sees; they and `load()` are safe from
any thread. Which metric sums a run up, and how the page writes it, is the mode's
(`modes`): the lab asks, it never names a mode.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..config import RunConfig
from ..errors import RunFolderError
from ..modes import Mode, get_mode
from ..runs import CHECKPOINT, CONFIG, FINAL, GIF, MP4, RunFolder
from ..training import Event
from .live import TICK_SECONDS, Curve, Previews, curves_from, finite
from .stream import Hub

if TYPE_CHECKING:
    from .turns import Training

# What the browser may download, by a fixed name: (file in the run folder, media type, label on the page).
DOWNLOADS: dict[str, tuple[str, str, str]] = {
    "video": (MP4, "video/mp4", "video"),
    "gif": (GIF, "image/gif", "gif"),
    "final": (FINAL, "image/png", "final picture"),
    "config": (CONFIG, "application/json", "config"),
    "checkpoint": (CHECKPOINT, "application/octet-stream", "checkpoint"),
}
# Downloads written only when training ends.
AT_THE_END = ("video", "gif", "final")


class LabRun:
    """One run folder as the lab sees it: state for the page, from disk or from its training."""

    def __init__(self, path: Path, cfg: RunConfig, hub: Hub, upload_id: Callable[[str | None], str | None]) -> None:
        self.id = path.name
        self.path = path
        self.folder = RunFolder(path)
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
        self.height, self.width = self.folder.target_size()
        self.lock = threading.Lock()  # guards the fields above against the training thread
        self.training: Training | None = None  # set while it trains (on the worker thread)
        # Touched by the training thread only.
        self._pending_points: list[tuple[int, float]] = []
        self._next_tick = 0.0
        self._previews = Previews()

    @property
    def mode(self) -> Mode:
        return get_mode(self.cfg.data.mode)

    @property
    def running(self) -> bool:
        return self.training is not None

    # -- state from disk ----------------------------------------------------------------

    def load(self) -> None:
        """State from the folder: metrics, frames, checkpoint, lock (for runs not training here)."""
        try:
            cfg = self.folder.config()  # the command line may have raised schedule.steps
        except RunFolderError:
            cfg = self.cfg
        records = self.folder.metrics()
        loss, metric = curves_from(records, get_mode(cfg.data.mode).headline)
        frames = self.folder.frame_steps()
        status = "busy" if self.folder.held_elsewhere() else self.folder.status()
        with self.lock:
            if self.running:
                return
            self.cfg = cfg
            self.step = records[-1].get("step", 0) if records else 0
            self.last_eval = records[-1] if records else None
            self.loss_curve, self.metric_curve, self.frame_steps = loss, metric, frames
            if not (self.status == "failed" and status == "paused"):  # keep the reason a failed run stopped
                self.status, self.error = status, None

    # -- what the page sees ---------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        with self.lock:
            last = self.last_eval or {}
            key = self.mode.headline
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
                "files": {name: (self.path / file).is_file() for name, (file, _, _) in DOWNLOADS.items()},
                "config": config,
            }

    def detail(self) -> dict[str, Any]:
        """The summary, the curves (and the stride each was thinned to) and the steps that have a frame."""
        out = self.summary()
        with self.lock:
            out["curves"] = {"loss": list(self.loss_curve.points), "metric": list(self.metric_curve.points)}
            out["curve_strides"] = {"loss": self.loss_curve.stride, "metric": self.metric_curve.stride}
            out["frames"] = list(self.frame_steps)
        return out

    def publish_status(self) -> None:
        self.hub.publish(self.id, {"type": "status", "run": self.summary()})

    # -- while it trains: called by `turns.Training` on the training thread ---------------------

    def started(self, training: Training, cfg: RunConfig, step: int, until: int | None) -> None:
        with self.lock:
            self.cfg, self.step, self.until = cfg, step, until
            self.status, self.error = "running", None
            self.training = training
        self.publish_status()

    def stopped(self, status: str, error: str | None, step: int) -> None:
        with self.lock:
            self.status, self.error, self.until = status, error, None
            self.step = step
            self._flush_points()
            self.training = None
        self.publish_status()

    def observe(self, event: Event) -> None:
        """Fold one training event into the state and tell the live views (the folder is written by the recorder)."""
        if event.kind == "log":
            loss = event.metrics.get("loss")
            with self.lock:
                self.step = event.step
                self.loss = loss if finite(loss) else self.loss
                self.steps_per_s = event.metrics.get("steps_per_s")
                if finite(loss):
                    self.loss_curve.add(event.step, loss)
                    self._pending_points.append((event.step, loss))
            now = time.perf_counter()
            if now >= self._next_tick:
                self._next_tick = now + TICK_SECONDS
                with self.lock:
                    self._flush_points()
                if self._previews.due(now) and self.hub.viewers(self.id):
                    self.hub.publish(self.id, self._previews.draw(event.trainer), latest_only=True)
        elif event.kind == "eval":
            record = event.metrics
            key = self.mode.headline
            with self.lock:
                self.step = event.step
                self.last_eval = dict(record)
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
