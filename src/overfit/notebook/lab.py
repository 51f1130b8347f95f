"""`Lab`: the lab's runs in a notebook cell, live while they train beside the kernel, as an anywidget.

    lab = Lab("relu_1", "siren", steps=2000)   # up to four runs on one target, side by side
    lab                                        # the cell's last expression shows it
    lab.start(); lab.wait()                    # or the Start / Pause / Step buttons
    Lab.load("runs/relu_1-...")                # an existing run: its history, scrubbed

The runs are the lab's: a `web.manager.RunManager` over the runs folder creates each run
folder with `Session.start` and trains it with `web.training.Training` (`Session.run` in
chunks, in a process of its own), so the kernel stays free and a run started here
is the same run folder `overfit train --resume` and `overfit lab` continue. The widget
adds presentation only: the live messages the lab page gets over a WebSocket arrive as
custom messages (`live.WidgetMailboxes`, a few a second), and the runs' state the page
gets from GET /api/runs/{id} is the `runs` trait, refreshed when a run starts or stops and
every `SNAPSHOT_SECONDS`, so a saved notebook keeps the last state.
The front end is the lab page's own views (`bundle.py`).
"""

from __future__ import annotations

import base64
import time
import warnings
from pathlib import Path
from typing import Any

from .errors import require

require("anywidget")

import anywidget  # noqa: E402
import traitlets  # noqa: E402

from ..config import RunConfig  # noqa: E402
from ..errors import ConfigError, OverfitError  # noqa: E402
from ..images import read_png  # noqa: E402
from ..presets import DEFAULT_PRESET, get_preset  # noqa: E402
from ..runs import TARGET, RunFolder  # noqa: E402
from ..web import pictures  # noqa: E402
from ..web.labrun import LabRun  # noqa: E402
from ..web.manager import RunManager  # noqa: E402
from ..web.meta import meta as lab_meta  # noqa: E402
from ..web.stream import clean  # noqa: E402
from ..web.uploads import UploadStore  # noqa: E402
from . import bundle  # noqa: E402
from .errors import NotebookError, one_line  # noqa: E402
from .live import WidgetMailboxes  # noqa: E402

# Runs side by side at most, as on the lab page.
MAX_SLOTS = 4
# How often at most the `runs` trait (every run's curves) is sent again while runs train.
SNAPSHOT_SECONDS = 2.0
# What of the page's /api/meta the views read; the forms' parts stay out of the notebook.
META_KEYS = ("defaults", "modes", "metrics", "presets", "default_preset", "colour_map", "patterns", "limits")


def _config(spec: str | RunConfig, steps: int | None, overrides: dict[str, Any] | None) -> RunConfig:
    cfg = get_preset(spec) if isinstance(spec, str) else spec
    if not isinstance(cfg, RunConfig):
        raise ConfigError(f"a run is a preset name or a RunConfig, not {type(spec).__name__}", "preset")
    changes = dict(overrides or {})
    if steps is not None:
        changes["schedule.steps"] = steps
    return cfg.with_overrides(changes) if changes else cfg


class Lab(anywidget.AnyWidget):
    """Up to four runs of one runs folder, shown live: pictures, step slider, curves, Start / Pause / Step."""

    _esm = bundle.module_source()
    _css = bundle.style_source()
    meta = traitlets.Dict().tag(sync=True)
    runs = traitlets.List().tag(sync=True)      # each run's state as the page gets it (`LabRun.detail`)
    targets = traitlets.Dict().tag(sync=True)   # run id -> its target picture (PNG, base64)
    latest = traitlets.Dict().tag(sync=True)    # run id -> {"step", "png"}: its newest saved frame
    message = traitlets.Unicode("").tag(sync=True)  # the last refusal of a button, one line

    @one_line
    def __init__(self, *runs: str | RunConfig, steps: int | None = None, overrides: dict[str, Any] | None = None,
                 runs_dir: str | Path = "runs", _open: tuple[str, ...] = ()) -> None:
        """New run folders in `runs_dir` for each preset name or RunConfig in `runs` (`steps` and the dotted
        `overrides`, e.g. {"optim.lr": 1e-3}, applied to each); none is trained until `start` or `step`."""
        if len(runs) + len(_open) > MAX_SLOTS:
            raise ConfigError(f"{len(runs) + len(_open)} runs; a lab shows at most {MAX_SLOTS} side by side", "runs")
        configs = [_config(spec, steps, overrides) for spec in (runs or (() if _open else (DEFAULT_PRESET,)))]
        super().__init__()
        self.runs_dir = Path(runs_dir)
        self._mailboxes = WidgetMailboxes(self._deliver)
        self._manager = RunManager(self.runs_dir, self._mailboxes, max_runs=MAX_SLOTS, upload_id=lambda _: None)
        served = lab_meta(UploadStore(self.runs_dir), MAX_SLOTS)
        self.meta = {key: served[key] for key in META_KEYS}
        self._ids: list[str] = []
        self._snapshot_at = 0.0
        try:
            for cfg in configs:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # a one-class picture: the widget shows its accuracy
                    self._add(self._manager.create(cfg))
            for name in _open:
                self._add(self._manager.get(name))
        except BaseException:
            self.close()
            raise
        self._refresh()
        self.on_msg(self._on_message)

    @classmethod
    @one_line
    def load(cls, *folders: str | Path) -> Lab:
        """Existing run folders (of one runs folder), their history to scrub; `start` trains them further."""
        paths = [Path(f) for f in folders]
        if not paths:
            raise ConfigError("name at least one run folder", "folders")
        for p in paths:
            RunFolder.open(p)  # "does not exist", "not a run folder": the folder's own words
        parents = {p.resolve().parent for p in paths}
        if len(parents) > 1:
            raise ConfigError("the run folders shown together must be in one runs folder", "folders")
        return cls(runs_dir=parents.pop(), _open=tuple(p.name for p in paths))

    # -- the lifecycle: the lab's, through its manager ----------------------------------------

    @property
    def paths(self) -> list[Path]:
        """The run folders shown."""
        return [self.runs_dir / run_id for run_id in self._ids]

    @one_line
    def start(self) -> Lab:
        """Train every run to its last step, in the background (the kernel stays free); a finished one is left."""
        for run_id in self._ids:
            if self._manager.get(run_id).status not in ("done", "running"):
                self._manager.start(run_id)
        self._refresh()
        return self

    @one_line
    def step(self) -> Lab:
        """Train every run up to its next evaluation, then pause."""
        for run_id in self._ids:
            if self._manager.get(run_id).status != "done":
                self._manager.step(run_id)
        self._refresh()
        return self

    @one_line
    def pause(self) -> Lab:
        """Stop every run at the next chunk boundary, with its checkpoint written (returns when they stopped)."""
        for run_id in self._ids:
            self._manager.pause(run_id)
        self._refresh()
        return self

    @one_line
    def wait(self, timeout: float | None = None) -> Lab:
        """Block until no run trains (finished, paused, failed), or `timeout` seconds passed; for scripts."""
        end = None if timeout is None else time.monotonic() + timeout
        for run_id in self._ids:
            training = self._manager.get(run_id).training
            if training is not None:
                training.join(None if end is None else max(0.0, end - time.monotonic()))
        self._refresh()
        return self

    def status(self) -> dict[str, str]:
        """Run id -> new | running | paused | done | failed | busy."""
        if self._manager is None:
            raise NotebookError("this lab is closed", "lab")
        return {run_id: self._manager.get(run_id).status for run_id in self._ids}

    def close(self) -> None:
        """Pause the runs (each keeps its checkpoint), stop the threads, close the widget."""
        manager = getattr(self, "_manager", None)
        if manager is not None:
            manager.shutdown()
            self._mailboxes.close()
            self._manager = None
        super().close()

    # -- what the front end gets ---------------------------------------------------------------------

    def _add(self, run: LabRun) -> None:
        self._ids.append(run.id)
        self._mailboxes.watch(run.id)
        target = pictures.show_target(self._picture(run, TARGET), run.mode)
        self.targets = {**self.targets, run.id: base64.b64encode(pictures.png(target)).decode("ascii")}

    @staticmethod
    def _picture(run: LabRun, *parts: str) -> Any:
        with run.open_file(*parts) as f:
            return read_png(f)

    def _frame(self, run: LabRun, step: int) -> bytes:
        path = run.folder.frame_path(step)
        return pictures.png(pictures.show_frame(self._picture(run, path.parent.name, path.name), run.mode))

    def _refresh(self) -> None:
        """The `runs` trait from each run's state now, and each run's newest frame."""
        self._mailboxes.flush()
        self._snapshot_at = time.monotonic()
        details = [self._manager.get(run_id).detail() for run_id in self._ids]
        latest = dict(self.latest)
        for d in details:
            if d["frames"] and latest.get(d["id"], {}).get("step") != d["frames"][-1]:
                step = d["frames"][-1]
                try:
                    png = self._frame(self._manager.get(d["id"]), step)
                except OverfitError:
                    continue
                latest[d["id"]] = {"step": step, "png": base64.b64encode(png).decode("ascii")}
        self.runs = clean(details)
        self.latest = latest

    def _deliver(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        """On the sender thread: the live messages to the front end; the state again when a run starts or stops."""
        self.send({"type": "live", "messages": [[run_id, message] for run_id, message in batch]})
        if any(m.get("type") == "status" for _, m in batch) or time.monotonic() - self._snapshot_at >= SNAPSHOT_SECONDS:
            self._snapshot_at = time.monotonic()
            details = [self._manager.get(run_id).detail() for run_id in self._ids] if self._manager else []
            self.runs = clean(details)

    def _on_message(self, _: Any, content: dict[str, Any], buffers: list[bytes]) -> None:
        """A button (start, pause, step) or a frame the step slider asks for."""
        kind = content.get("type")
        try:
            if kind == "action" and content.get("action") in ("start", "pause", "step"):
                getattr(self, content["action"])()
                self.message = ""
            elif kind == "frame":
                run = self._manager.get(str(content.get("run")))
                png = self._frame(run, int(content.get("step", -1)))
                self.send({"type": "frame", "run": run.id, "step": content["step"], "ok": True}, buffers=[png])
        except OverfitError as e:
            if kind == "frame":
                self.send({"type": "frame", "run": content.get("run"), "step": content.get("step"), "ok": False, "error": str(e)})
            else:
                self.message = str(e)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}: {v}" for k, v in self.status().items()) if self._manager else "closed"
        return f"Lab({shown})"
