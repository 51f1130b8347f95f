"""One run folder as the lab sees it: its state for the page, read from disk or followed live.

A `LabRun` is an ordinary run folder under runs_dir. While it does not train here,
its state comes from the folder (`RunFolder`: config, metrics, frames, checkpoint,
lock), so runs made or continued by `overfit train` show as they are on disk. While
it trains in its process (`training.Training`), the lab's listener thread folds each
message of that process into the same state (`apply`) and passes it on to the page's live
views (`stream.Mailboxes`): loss points in ticks, evaluations, previews and status changes;
when the process has ended, the state is read from the folder again.

`summary()` and `detail()` are what the page sees; they and `load()` are safe from
any thread. Which metric sums a run up, and how the page writes it, is the mode's
(`modes`): the lab asks, it never names a mode. A run with held-out pixels
(`data.holdout`) also has that headline over its training pixels and over its held-out
pixels at each evaluation; the page gets a curve of every metric a run records (`live.curves_from`).

Files go to the browser only through `open_file`, which follows no symbolic link
(`safefiles.open_plain_file`): a run folder copied from elsewhere may hold a `progress.gif` that
links to /etc/passwd, and the lab must not serve it.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Callable

from .. import configio
from ..config import RunConfig
from ..configio import MAX_JSON_CHARS
from ..errors import ConfigError, RunFolderError
from ..modes import Mode, get_mode
from ..endings import ENDING
from ..runs import CHECKPOINT, CONFIG, FINAL, FRAMES, GIF, METRICS, MP4, RunFolder
from ..safefiles import NotPlainFile, is_plain_file, open_plain_file
from ..sampling import NO_HOLDOUT
from .errors import LabError, hide_paths
from .live import LAYER_KEYS, Curve, Inside, curves_from, eval_values, finite, inside, inside_from, new_curves
from .stream import Mailboxes

if TYPE_CHECKING:
    from .training import Training

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


def shown_path(path: str, runs_dir: Path) -> str:
    """A picture's path as the page may see it: relative to the runs folder when inside it, else its file name."""
    p = Path(path)
    try:
        return p.resolve().relative_to(runs_dir.resolve()).as_posix() if p.is_absolute() else p.name
    except (ValueError, OSError):
        return p.name


class LabRun:
    """One run folder as the lab sees it: state for the page, from disk or from its training."""

    def __init__(self, path: Path, cfg: RunConfig, mailboxes: Mailboxes, upload_id: Callable[[str | None], str | None]) -> None:
        self.id = path.name
        self.path = path
        self.folder = RunFolder(path)
        self.cfg = cfg
        self.mailboxes = mailboxes
        self._upload_id = upload_id
        self.status = "new"  # new | running | paused | done | failed | busy
        self.error: str | None = None
        self.step = 0
        self.until: int | None = None  # Step: stop at this step (the next evaluation)
        self.loss: float | None = None
        self.steps_per_s: float | None = None
        self.last_eval: dict[str, Any] | None = None
        self.curves: dict[str, Curve] = new_curves()  # "loss" and one curve per metric key the records hold (live.Curves)
        self.inside_curve = Inside()
        self.frame_steps: list[int] = []
        self.height, self.width = self.folder.target_size()
        self.lock = threading.Lock()  # guards the fields above against the listener thread
        self.training: Training | None = None  # set while its process trains it
        # What the folder said at the last `load`: its signature, and its status and error without the lock probe.
        self._seen: tuple[tuple[int, int] | None, ...] | None = None
        self._on_disk: tuple[str, str | None] = ("new", None)

    @property
    def mode(self) -> Mode:
        return get_mode(self.cfg.data.mode)

    @property
    def running(self) -> bool:
        return self.training is not None

    # -- state from disk ----------------------------------------------------------------

    def _signature(self) -> tuple[tuple[int, int] | None, ...]:
        """What `load` reads, as (modification time, size) each: while it is unchanged, the folder says what it said."""
        out = []
        for name in (CONFIG, METRICS, CHECKPOINT, ENDING, FRAMES):  # frames/ changes when a frame is added or removed
            try:
                st = (self.path / name).stat()
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append(None)
        return tuple(out)

    def load(self) -> None:
        """State from the folder: metrics, frames, checkpoint, lock (for runs not training here).

        The files are read again only when one of them changed since the last read (`_signature`):
        the run list asks every folder at each request, and a long run's metrics are megabytes.
        Whether another process holds the folder is asked every time.
        """
        seen = self._signature()  # before reading: a write during the read shows as a change next time
        if seen != self._seen:
            try:
                cfg = self.folder.config()  # the command line may have raised schedule.steps
            except RunFolderError:
                cfg = self.cfg
            records = self.folder.metrics()
            curves = curves_from(records, get_mode(cfg.data.mode))
            diag = inside_from(records)
            try:
                frames = self.folder.frame_steps()
            except RunFolderError:  # frames/ is a link or no folder: none listed, none served (`open_file`)
                frames = []
            status = self.folder.status(records)
            failure = self.folder.error(records) if status == "failed" else None  # kept on disk: it survives a reload and a restart
            ending = self.folder.ending(records)  # a pause between evaluations: its checkpoint's step
            step = max(records[-1].get("step", 0) if records else 0, ending.step if ending is not None else 0)
            with self.lock:
                if self.running:
                    return
                self.cfg = cfg
                self.step = step
                self.last_eval = records[-1] if records else None
                self.curves, self.frame_steps = curves, frames
                self.inside_curve = diag
                self._on_disk = status, failure["error"] if failure else None
                self._seen = seen
        busy = self.folder.held_elsewhere()
        with self.lock:
            if not self.running:
                self.status, self.error = ("busy", None) if busy else self._on_disk

    # -- what the page sees ---------------------------------------------------------------

    def summary(self) -> dict[str, Any]:
        with self.lock:
            last = self.last_eval or {}
            mode = self.mode
            key = mode.headline
            config = self.cfg.to_dict()
            upload = self._upload_id(self.cfg.data.image)
            # The browser never sees server paths: an uploaded picture is its upload id.
            config["data"]["image"] = None
            return {
                "id": self.id,
                "status": self.status,
                "error": hide_paths(self.error, self.path.parent),
                "step": self.step,
                "steps": self.cfg.schedule.steps,
                "until": self.until,
                "preset": self.cfg.preset,
                "mode": self.cfg.data.mode,
                "metric": key,
                "metric_value": last.get(key),
                # Held-out pixels: the config's value, and the headline over the training and the held-out pixels.
                "holdout": self.cfg.data.holdout,
                "held_out": self.cfg.data.holdout != NO_HOLDOUT,
                "fit_value": last.get(mode.fit_headline),
                "test_value": last.get(mode.test_headline),
                "loss": self.loss if self.loss is not None else last.get("train_loss"),
                "steps_per_s": self.steps_per_s if self.status == "running" else None,
                "height": self.height,
                "width": self.width,
                "upload": upload,
                "image_source": "upload" if upload else ("file" if self.cfg.data.image else None),
                "viewers": self.mailboxes.viewers(self.id),
                "files": {name: is_plain_file(self.path / file) for name, (file, _, _) in DOWNLOADS.items()},
                "config": config,
            }

    def detail(self) -> dict[str, Any]:
        """The summary, the curves (and the stride each was thinned to) and the steps that have a frame.

        "inside" holds what happens inside the network at each evaluation, thinned as a curve:
        points (step, {"layers": {name: [values of `keys`]}, "bands": [...]}), its stride and the keys.
        """
        out = self.summary()
        with self.lock:
            out["curves"] = {name: list(curve.points) for name, curve in self.curves.items()}
            out["curve_strides"] = {name: curve.stride for name, curve in self.curves.items()}
            out["inside"] = {"points": list(self.inside_curve.points), "stride": self.inside_curve.stride, "keys": list(LAYER_KEYS)}
            out["frames"] = list(self.frame_steps)
        return out

    def open_file(self, *parts: str) -> BinaryIO:
        """A file of the run folder (`parts` below it) for the browser: LabError 404 if missing, 403 if it is a link."""
        name = "/".join(parts)
        try:
            return open_plain_file(self.path, *parts)
        except NotPlainFile as e:
            raise LabError(403, f"run {self.id}: {e}; the lab serves only plain files inside the run folder, "
                                "never through a symbolic link") from None
        except FileNotFoundError:
            raise LabError(404, f"run {self.id} has no {name}") from None
        except OSError as e:
            raise LabError(404, f"run {self.id}: cannot read {name} ({e.strerror or type(e).__name__})") from None

    def config_download(self) -> bytes:
        """config.json as the browser downloads it: an uploaded picture's path relative to the runs folder (any other
        picture's path cut to its file name), so no server path leaves the machine. LabError 404/403/409 as `open_file`."""
        with self.open_file(CONFIG) as f:
            text = f.read(MAX_JSON_CHARS + 1).decode("utf-8", errors="replace")
        try:
            config = configio.loads(text)
        except ConfigError as e:
            raise LabError(409, f"run {self.id}: {CONFIG} is not a readable config ({e})") from None
        data = config.get("data") if isinstance(config, dict) else None
        if isinstance(data, dict) and isinstance(data.get("image"), str):
            data["image"] = shown_path(data["image"], self.path.parent)
        return (json.dumps(config, indent=2) + "\n").encode()

    def publish_status(self) -> None:
        self.mailboxes.publish(self.id, {"type": "status", "run": self.summary()})

    # -- while it trains: called by `training.Training` from its listener thread ----------------

    def started(self, training: Training, config: dict[str, Any], step: int, until: int | None) -> None:
        """Its process has opened the run (with the folder's `config`, at `step`) and trains it."""
        cfg = RunConfig.from_dict(config)
        with self.lock:
            self.cfg, self.step, self.until = cfg, step, until
            self.status, self.error = "running", None
            self.loss = self.steps_per_s = None
            self.training = training
        self.publish_status()

    def stopped(self, error: str | None = None) -> None:
        """Its process has ended: the state is the folder's again (`error`: why, where the folder could not keep it)."""
        with self.lock:
            self.training, self.until = None, None
            self._seen = None  # read everything again: the process wrote what the live view did not carry
        try:
            self.load()
        except RunFolderError as e:
            error = error or str(e)
        if error is not None:
            with self.lock:
                if self.status != "failed":  # the folder could not keep why: the lab does, until the folder changes
                    self.status, self.error = "failed", error
                    self._on_disk = self.status, self.error
        self.publish_status()

    def apply(self, message: dict[str, Any]) -> None:
        """Fold one message of the training process into the state and pass it on to the live views."""
        kind = message.get("type")
        if kind == "tick":
            with self.lock:
                self.step = message["step"]
                self.loss = message["loss"] if finite(message["loss"]) else self.loss
                self.steps_per_s = message["steps_per_s"]
                for step, loss in message["points"]:
                    self.curves["loss"].add(step, loss)
            self.mailboxes.publish(self.id, message)
        elif kind == "eval":
            record, step, mode = message["record"], message["step"], self.mode
            with self.lock:
                self.step = max(self.step, step)
                self.last_eval = dict(record)
                for name, value in eval_values(record, mode).items():
                    self.curves[name].add(step, value)
                self.inside_curve.add(step, inside(record))
                if message["frame"] is not None:
                    self.frame_steps.append(step)
            # The record's keys of the headline over every pixel and, with held-out pixels, over each part.
            keys = {"metric": mode.headline}
            if mode.test_headline in record:
                keys.update(fit=mode.fit_headline, test=mode.test_headline)
            self.mailboxes.publish(self.id, {"type": "eval", "record": record, **keys, "frame": message["frame"]})
        elif kind == "preview":
            self.mailboxes.publish(self.id, message, latest_only=True)
