"""The lab's runs: every run folder in runs_dir, created and trained through `Session`, at most `max_runs` at once.

A new run is made by `Session.start` exactly as `overfit train` makes one (config,
target and samples written, nothing trained), in a process of its own, one create at a
time (queued on the `worker.Worker` thread). It is trained by `training.Training`, in a
process of its own that resumes it with `Session.resume` as `overfit train --resume`
would; the runs training share the cores (each process gets `cores // training` threads,
set again whenever one starts or stops). The web layer (`app`) only calls `RunManager`
methods and reads `LabRun.summary()` / `detail()`; those are safe from any thread.

The manager's lock guards its own bookkeeping (the runs it knows, the runs being
started) and nothing else: a request reserves what it needs under the lock, waits for
the worker or the new process without it, and publishes the result under it again. So
however long that takes (a wide model, a queue of creates), reading the runs never waits for it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..budget import Pool
from ..config import RunConfig
from ..errors import RunFolderError
from ..limits import most
from ..runs import CONFIG, NAME_PATTERN, TARGET, RunFolder
from .errors import LabError, lab_error, runs_dir_names
from .forms import lab_memory_budget
from .labrun import LabRun
from .stream import Mailboxes
from .training import Training, cores, create
from .worker import Worker

MAX_ID_LENGTH = 200
# Run folders the lab makes in its runs folder at most (`limits`): a page left creating runs, or a client on the
# network, must not fill the disk. Raised with `overfit lab --max-folders`.
MAX_FOLDERS = most("folders")


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


class RunManager:
    """All runs in runs_dir, at most `max_runs` of them training at once and `max_folders` run folders in all."""

    def __init__(self, runs_dir: Path, mailboxes: Mailboxes, max_runs: int, upload_id: Callable[[str | None], str | None],
                 max_folders: int = MAX_FOLDERS) -> None:
        self.runs_dir = runs_dir
        self.mailboxes = mailboxes
        # Every run training in the lab at once shares one memory budget (and a new run is checked beside them).
        self.pool = Pool(lab_memory_budget())
        self.max_runs = max_runs
        self.max_folders = max_folders
        self._upload_id = upload_id
        self._runs: dict[str, LabRun] = {}
        # Runs whose training is being set up on the worker: each holds one of the max_runs places,
        # and a second start of the same run waits for its event, then takes the new `until`.
        self._starting: dict[str, threading.Event] = {}
        self._lock = threading.Lock()  # guards the two dicts above; never held while waiting for anything
        self.worker = Worker()
        self.setup: Callable[[], Any] | None = None
        """Run by each training process before it trains (logging, profiling, tests): a function it can import."""

    # -- finding runs ---------------------------------------------------------------------

    def _path(self, run_id: str) -> Path:
        """The folder of `run_id`, or LabError 404: only plain names directly inside runs_dir."""
        if not isinstance(run_id, str) or len(run_id) > MAX_ID_LENGTH or not NAME_PATTERN.fullmatch(run_id):
            raise LabError(404, "no such run (run ids are plain folder names)")
        path = self.runs_dir / run_id
        if path.is_symlink() or not (path / CONFIG).is_file() or path.resolve().parent != self.runs_dir.resolve():
            raise LabError(404, f"no run named {run_id!r} in the runs folder")
        return path

    def get(self, run_id: str) -> LabRun:
        path = self._path(run_id)
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:  # read from disk without the lock, then published (the first of two readers wins)
            try:
                cfg = RunFolder.open(path).config()
            except RunFolderError as e:
                raise LabError(409, f"run {run_id} cannot be read: {lab_error(e, hide=runs_dir_names(self.runs_dir)).detail}") from None
            fresh = LabRun(path, cfg, self.mailboxes, self._upload_id)
            with self._lock:
                run = self._runs.setdefault(run_id, fresh)
        if not run.running:
            try:
                run.load()
            except RunFolderError as e:  # a file of the folder refused (a link, a FIFO, an oversized file): one line
                raise LabError(409, f"run {run_id} cannot be read: {lab_error(e, hide=runs_dir_names(self.runs_dir)).detail}") from None
        return run

    def _folders(self) -> list[Path]:
        """Every run folder in runs_dir (a plain name with a config.json)."""
        if not self.runs_dir.is_dir():
            return []
        return [p for p in self.runs_dir.iterdir() if NAME_PATTERN.fullmatch(p.name) and (p / CONFIG).is_file()]

    def list(self) -> list[dict[str, Any]]:
        """Every run folder in runs_dir (a folder with config.json), newest first."""
        out = []
        # target.png is written when a run starts from step 0 (config.json also when it resumes).
        for path in sorted(self._folders(), key=lambda p: _mtime(p / TARGET), reverse=True):
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
        if name is not None and (len(name) > MAX_ID_LENGTH or not NAME_PATTERN.fullmatch(name)):
            raise LabError(422, "must be a plain folder name: letters, digits, '.', '_', '-', not starting with '.' or '-'", field="name")
        path = self.worker.call(self._create, cfg, name)
        return self.get(path.name)

    def _create(self, cfg: RunConfig, name: str | None) -> Path:
        """On the worker thread, one create at a time: so the folder count below cannot race another create."""
        folders = len(self._folders())
        if folders >= self.max_folders:
            raise LabError(429, f"the runs folder holds {folders:,} run folders, the most this lab makes "
                                f"(--max-folders {self.max_folders:,}); remove run folders you no longer need, "
                                f"or restart the lab with a larger --max-folders")
        # A new run is checked beside the runs training now: in the budget they leave.
        memory = max(0, self.pool.limit - self.pool.held)
        return create(cfg, self.runs_dir, name, memory, cfg.data.image, self.setup)

    def start(self, run_id: str, until: int | None = None) -> LabRun:
        """Train `run_id` (to the end, or to step `until`); a running run just takes the new `until`."""
        run = self.get(run_id)
        while True:
            with self._lock:
                training = run.training
                if training is not None:
                    with run.lock:
                        run.until = until
                    training.set_until(until)
                    return run
                other = self._starting.get(run_id)
                if other is None:
                    busy = {r.id for r in self._runs.values() if r.running} | set(self._starting)
                    if len(busy) >= self.max_runs:
                        raise LabError(429, f"{len(busy)} run(s) are already training, the most this lab allows at once "
                                            f"(--max-runs {self.max_runs}); pause one, wait for one to finish, "
                                            f"or restart the lab with a larger --max-runs")
                    reserved = self._starting[run_id] = threading.Event()
                    break
            other.wait()  # another request is starting this run; then it runs, and takes our `until`
        try:  # slow (a new process opens the run): no lock held
            Training.begin(run, until, self.pool, self._share(len(busy) + 1), self._balance, self.setup)
        finally:
            with self._lock:
                del self._starting[run_id]
            reserved.set()
        self._balance()
        return run

    def _share(self, training: int) -> int:
        """Threads for each of `training` runs training at once: the cores shared out, at least one each."""
        return max(1, cores() // max(1, training))

    def _balance(self, _: Training | None = None) -> None:
        """Give each training run its share of the cores again (a run started or stopped)."""
        trainings = [t for t in (r.training for r in self.running()) if t is not None]
        for training in trainings:
            training.set_threads(self._share(len(trainings)))

    def step(self, run_id: str) -> LabRun:
        """Train one evaluation interval: up to the next evaluation step, then pause."""
        run = self.get(run_id)
        every = run.cfg.schedule.eval_every
        target = min((run.step // every + 1) * every, run.cfg.schedule.steps)
        return self.start(run_id, until=target)

    def pause(self, run_id: str) -> LabRun:
        """Stop at the next chunk boundary and wait for the checkpoint."""
        run = self.get(run_id)
        training = run.training
        if training is not None:
            training.request_pause()
            training.join()
        return run

    def reset(self, run_id: str) -> LabRun:
        """A fresh run from the same config; the old folder is kept as it is (never reused)."""
        run = self.get(run_id)
        if run.running:
            self.pause(run_id)
        return self.create(run.cfg)

    def shutdown(self) -> None:
        """Pause every run (each saves its checkpoint), so all of them can be resumed later; stop the worker."""
        trainings = [t for t in (r.training for r in self.running()) if t is not None]
        for training in trainings:
            training.request_pause()
        for training in trainings:
            training.join()
        self.worker.close()
