"""A sweep on Ray Tune: connecting to Ray, the trainable (one ordinary run folder per trial), and the Tuner.

    connect(None)                          # Ray in this process, one CPU per core
    grid = run_sweep(spec, Path("sweeps/lr-levels"))
    grid = resume_sweep(spec, Path("sweeps/lr-levels"))

Each trial starts (or, after its worker died, resumes) its run folder through `Session`,
reports every evaluation record to Tune, and saves a Ray checkpoint that names the run
folder. Ray's own results live in `sweeps/<name>/ray`; the run folders in `sweeps/<name>/runs`.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterator

from ..errors import MissingDependency, OverfitError, RunBusyError
from .spec import SweepSpec, most_evaluations
from .state import EXPERIMENT, check_resumable, sign_state

RUN_POINTER = "run.json"  # the one file of each Ray checkpoint: the run folder's path


def require_ray(search: str | None = None) -> Any:
    """Ray Tune (and Optuna for `search` "tpe"), or a one-line MissingDependency naming the extra."""
    try:
        import ray
        from ray import tune  # noqa: F401
    except ImportError:
        raise MissingDependency("overfit sweep", "ray[tune]", "sweep") from None
    if search == "tpe":
        try:
            import optuna  # noqa: F401  (Ray's wrapper imports without it and fails only when built)
        except ImportError:
            raise MissingDependency("overfit sweep --search tpe", "optuna", "sweep") from None
    return ray


def connect(address: str | None, timeout_s: float = 5.0) -> None:
    """Start Ray in this process (address None), or join the cluster at `address` after checking it answers."""
    ray = require_ray()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # One tiny checkpoint per evaluation is the design (it names the run folder); Ray's warning about it is noise.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if address is None:  # a Ray of its own: never a cluster named by RAY_ADDRESS or left behind by one that died
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, configure_logging=False)
        return
    if address != "auto":
        host, port = _host_port(address)
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
        except OSError as e:
            raise OverfitError(f"no Ray cluster answers at {address}: {e.strerror or e}", field="address") from None
    try:
        _join(ray, address)
    except Exception as e:  # ray raises ConnectionError, RuntimeError, ... for a cluster it cannot join
        why = " ".join(line.strip() for line in str(e).splitlines() if line.strip())[:300] or type(e).__name__
        raise OverfitError(f"cannot join the Ray cluster at {address}: {why}", field="address") from None


def _join(ray: Any, address: str, tries: int = 4) -> None:
    """ray.init at `address`. Through Ray Client (ray://) the head starts a server process for each new client, which
    can miss its start-up deadline or die starting on a busy head ("Initialization failure from server"): that is tried
    again, `tries` times in all, waiting a little longer each time (2, 4, 8 s)."""
    for attempt in range(tries):
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
            return
        except Exception as e:
            if not address.startswith("ray://") or "Initialization failure" not in str(e) or attempt == tries - 1:
                raise
            with suppress(Exception):
                ray.shutdown()  # the failed client's half-made connection
            print(f"the Ray Client server at {address} did not start in time; trying again in {2 ** (attempt + 1)} s",
                  file=sys.stderr, flush=True)
            time.sleep(2 ** (attempt + 1))


def _host_port(address: str) -> tuple[str, int]:
    rest = address.split("://", 1)[-1]
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        raise OverfitError(f"expected HOST:PORT or ray://HOST:PORT, got {address!r}", field="address")
    return host.strip("[]"), int(port)


def trainable(params: dict[str, Any], base_json: str, runs_dir: str, threads: int) -> None:
    """One trial: its run folder under `runs_dir`, trained to the end, every evaluation reported to Tune."""
    import ray
    import torch
    from ray import tune

    from ..budget import Pool, default_budget
    from ..config import RunConfig
    from ..session import Session, train_sessions

    torch.set_num_threads(threads)  # cores per trial: no oversubscription
    trial_id = tune.get_context().get_trial_id()
    path = Path(runs_dir) / f"trial-{trial_id}"
    restored = tune.get_checkpoint()
    if restored is not None:
        with restored.as_directory() as d:
            path = trial_folder(runs_dir, (Path(d) / RUN_POINTER).read_text(encoding="utf-8", errors="replace").strip())
    node = {"node_ip": ray.util.get_node_ip_address(), "node_id": ray.get_runtime_context().get_node_id(), "run_folder": str(path)}

    def report(event: Any) -> None:
        if event.kind != "eval":
            return
        import tempfile

        from ray.tune import Checkpoint

        metrics = {k: v for k, v in event.metrics.items() if isinstance(v, (int, float))}
        with tempfile.TemporaryDirectory() as d:
            (Path(d) / RUN_POINTER).write_text(str(path))
            tune.report({**metrics, **node}, checkpoint=Checkpoint.from_directory(d))

    # The trials on a node train at the same time, each on its share of the cores: each gets that share of the memory too.
    pool = Pool(int(default_budget() * min(1.0, threads / (os.cpu_count() or 1))), source_field=None)
    if (path / "config.json").is_file():  # a retry after its worker died: continue the run folder
        session = _resume(path, pool)
        node["resumed_at"] = session.trainer.step if session is not None else -1
        if session is None:  # finished before its worker died: report the last record once more
            from ..runs import RunFolder

            tune.report({**RunFolder(path).metrics()[-1], **node})
            return
    else:
        if path.exists():  # died while its folder was being made: nothing of value in it
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        cfg = RunConfig.from_json(base_json).with_overrides({k: str(v) for k, v in params.items()})
        session = Session.start(cfg, runs_dir, path.name, pool=pool)
    result = train_sessions([session], [[report]], interruptible=False)[0]
    if result.diverged is not None:  # the trial fails with the reason (its ending is recorded in its folder)
        raise result.diverged


def trial_folder(runs_dir: str | Path, named: str) -> Path:
    """The run folder a trial's checkpoint names, if it is one of this sweep's trial folders: directly in `runs_dir`,
    named trial-*, no link; else an error (a copied or edited checkpoint must not point a retry, which may delete a
    half-made folder, anywhere else)."""
    runs = Path(runs_dir).resolve()
    path = Path(named)
    if path.parent.resolve() != runs or not path.name.startswith("trial-") or path.is_symlink():
        raise OverfitError(f"a trial checkpoint names {named[:200]!r}, which is not one of this sweep's run folders in {runs}",
                           field="resume")
    return runs / path.name


def _resume(path: Path, pool: Any) -> Any:
    """The run at `path` resumed (in the memory budget `pool`), or None if it is done; waits for a dying worker's lock."""
    from ..runs import RunFolder
    from ..session import Session

    if RunFolder(path).finished():
        return None
    deadline = time.monotonic() + 30
    while True:
        try:
            return Session.resume(path, pool=pool)
        except RunBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _tuner_parts(spec: SweepSpec, sweep_dir: Path) -> tuple[Any, Any]:
    """The trainable (with its resources and fixed arguments) and Ray's RunConfig, shared by a new and a restored sweep."""
    from ray import tune

    from .progress import SweepProgress

    runs_dir = sweep_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    fn = tune.with_parameters(trainable, base_json=spec.config.to_json(), runs_dir=str(runs_dir), threads=1)
    fn = tune.with_resources(fn, {"cpu": 1, "memory": trial_memory(spec)})
    run_config = tune.RunConfig(
        name=EXPERIMENT, storage_path=str((sweep_dir / "ray").resolve()), verbose=0,
        failure_config=tune.FailureConfig(max_failures=spec.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[SweepProgress(spec)],
    )
    return fn, run_config


def trial_memory(spec: SweepSpec) -> int:
    """Bytes a trial reserves from Ray, so a node runs no more trials than its memory holds: the largest estimate
    (`budget.estimate`) of the sweep's bounding configs (`spec.configs`) on its picture, whose size is read here."""
    from ..budget import estimate
    from ..targets import load_target
    from .spec import configs

    target = load_target(spec.config.data)
    return max(estimate(cfg, (target.height, target.width)).total for cfg in configs(spec))


def param_space(spec: SweepSpec) -> dict[str, Any]:
    """Tune's search space: grid dims and seeds as grid searches (TPE: choices), random dims as distributions."""
    from ray import tune

    seeds = [str(s) for s in spec.seed_values()]
    choose = tune.choice if spec.search == "tpe" else tune.grid_search
    space: dict[str, Any] = {key: choose(list(values)) for key, values in spec.grid.items()}
    if len(seeds) > 1:
        space["seed"] = choose(seeds)
    for key, dim in spec.random.items():
        if dim.kind == "choice":
            space[key] = tune.choice(list(dim.choices))
        elif dim.kind == "int":
            space[key] = tune.randint(int(dim.low), int(dim.high) + 1)  # randint's upper end is exclusive
        elif dim.kind == "log":
            space[key] = tune.loguniform(dim.low, dim.high)
        else:
            space[key] = tune.uniform(dim.low, dim.high)
    return space


def _tune_config(spec: SweepSpec) -> Any:
    from ray import tune

    scheduler = search = None
    if spec.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # Time is counted in evaluations (one report each), so the grace period is in evaluations too. max_t lies one
        # beyond the last report: at max_t Tune stops a trial itself, before it writes final.png and its videos.
        evals = max(most_evaluations(spec), spec.grace_period + 1)
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=evals + 1, grace_period=spec.grace_period, reduction_factor=2)
    if spec.search == "tpe":
        require_ray(spec.search)
        from ray.tune.search.optuna import OptunaSearch
        search = OptunaSearch(seed=spec.config.seed)
    return tune.TuneConfig(
        metric=spec.metric, mode=spec.mode, scheduler=scheduler, search_alg=search,
        num_samples=spec.samples, max_concurrent_trials=spec.max_concurrent, reuse_actors=True,
        trial_dirname_creator=lambda trial: trial.trial_id, trial_name_creator=lambda trial: trial.trial_id,
    )


def run_sweep(spec: SweepSpec, sweep_dir: Path) -> Any:
    """Run every trial of `spec`; the ResultGrid."""
    from ray import tune

    fn, run_config = _tuner_parts(spec, sweep_dir)
    tuner = tune.Tuner(fn, param_space=param_space(spec), tune_config=_tune_config(spec), run_config=run_config)
    try:
        return tuner.fit()
    finally:
        sign_state(sweep_dir)


def resume_sweep(spec: SweepSpec, sweep_dir: Path) -> Any:
    """Continue a stopped sweep from Ray's state: finished trials are kept, the rest resume from their checkpoints.

    Ray's state holds pickles, and unpickling runs code: it is restored only if it carries this user's signature
    from when this machine's sweep wrote it (`state.sign_state`); a sweep folder copied from elsewhere is refused.
    The command line checks that before Ray starts (`state.check_resumable`); it is checked again here, just before.
    """
    from ray import tune

    fn, _ = _tuner_parts(spec, sweep_dir)
    path = (sweep_dir / "ray" / EXPERIMENT).resolve()
    if not tune.Tuner.can_restore(str(path)):
        raise OverfitError(f"{sweep_dir} has no Ray state to continue ({path} is missing)", field="resume")
    check_resumable(sweep_dir)
    tuner = tune.Tuner.restore(str(path), trainable=fn, resume_unfinished=True, resume_errored=True)
    try:
        return tuner.fit()
    finally:
        sign_state(sweep_dir)


GROUPS = "groups"  # Ray's experiment folder of `run_groups` inside its storage folder


def _group_trainable(params: dict[str, Any], train_group: Callable[[int], None], threads: int) -> None:
    """One trial of `run_groups`: group `params['group']` trained by `train_group` on this worker's share of the cores."""
    import ray
    import torch
    from ray import tune

    torch.set_num_threads(threads)
    train_group(params["group"])
    tune.report({"group": params["group"], "node_ip": ray.util.get_node_ip_address(), "node_id": ray.get_runtime_context().get_node_id()})


def run_groups(train_group: Callable[[int], None], count: int, storage: Path, max_failures: int, threads: int = 1) -> Any:
    """`train_group(0)` ... `train_group(count - 1)` as Tune trials (one CPU each, `threads` torch threads): the ResultGrid.

    The machinery of a sweep's trials for runs planned elsewhere (a reproduction's stacks):
    the same cluster, retries and Ctrl-C. A trial whose worker died is tried again from the
    start, up to `max_failures` times, so `train_group` must continue from what its run
    folders hold. Nothing of Ray's state is read back later: the run folders are the record.
    """
    from ray import tune

    fn = tune.with_resources(tune.with_parameters(_group_trainable, train_group=train_group, threads=threads), {"cpu": threads})
    run_config = tune.RunConfig(name=GROUPS, storage_path=str(storage.resolve()), verbose=0,
                                failure_config=tune.FailureConfig(max_failures=max_failures))
    tuner = tune.Tuner(fn, param_space={"group": tune.grid_search(list(range(count)))},
                       tune_config=tune.TuneConfig(reuse_actors=True), run_config=run_config)
    return tuner.fit()


# Said at the first Ctrl-C. A trial stops when it next reports (an evaluation); Tune waits 10 s for that, then kills
# it, and the run resumes from its last evaluation's checkpoint.
STOPPING = "Stopping the sweep: running trials stop at their next evaluation or within 10 s (Ctrl-C again to stop at once)"


def _tunes_own_interrupt_lines(record: logging.LogRecord) -> bool:
    """Drops Tune's lines on a stop ("Stop signal received ...", "Resume experiment with: Tuner.restore(...)"): the sweep
    says STOPPING and how to continue (`overfit sweep --resume`) in its own words."""
    return not record.getMessage().startswith(("Stop signal received", "Experiment has been interrupted"))


@contextmanager
def remembered_interrupt() -> Iterator[Callable[[], bool]]:
    """While open, Ctrl-C stops the sweep as Tune stops it (its state saved for --resume), and is remembered.

    Tune's own SIGINT handler stops the run but leaves no trace of having done so, and a
    trial it stopped looks finished in the results; so Tune's handler is left to SIGUSR1
    (which it also listens to), and Ctrl-C is noted here, then passed on as SIGUSR1. A
    second Ctrl-C stops at once. The first says so at once (STOPPING). Yields a function: whether Ctrl-C was pressed. Where
    there is no SIGUSR1 (Windows) or this is not the main thread, Tune handles Ctrl-C alone.
    """
    if not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return
    presses: list[int] = []

    def on_sigint(sig: int, frame: Any) -> None:
        presses.append(sig)
        if len(presses) > 1:
            raise KeyboardInterrupt
        signal.raise_signal(signal.SIGUSR1)  # Tune's handler has run when this returns
        sys.stderr.write(STOPPING + "\n")
        sys.stderr.flush()

    def before_tune(sig: int, frame: Any) -> None:  # SIGUSR1 before Tune listens for it: stop, not die
        raise KeyboardInterrupt

    saved_env = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    previous = signal.signal(signal.SIGINT, on_sigint), signal.signal(signal.SIGUSR1, before_tune)
    tune_log = logging.getLogger("ray.tune.tune")
    tune_log.addFilter(_tunes_own_interrupt_lines)
    try:
        yield lambda: bool(presses)
    finally:
        tune_log.removeFilter(_tunes_own_interrupt_lines)
        signal.signal(signal.SIGINT, previous[0])
        signal.signal(signal.SIGUSR1, previous[1])
        if saved_env is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = saved_env


def unfinished(grid: Any, expected: int) -> int:
    """Trials of the `expected` neither finished nor failed: the sweep was interrupted (Tune catches Ctrl-C and returns).

    Counted against the spec, not the grid: trials the search had not yet made are missing from it.
    """
    return expected - grid.num_terminated - grid.num_errors


def trial_records(grid: Any) -> list[dict[str, Any]]:
    """Each trial of a ResultGrid as plain values for `results`: id, swept params, last report, error, run folder."""
    records = []
    for result in grid:
        metrics = dict(result.metrics or {})
        trial_id = Path(result.path).name
        records.append({
            "trial_id": trial_id, "params": dict(result.config or {}), "last": metrics,
            "error": last_line(result.error) if result.error else None,
            "wall_s": metrics.get("time_total_s"),
            "run_folder": metrics.get("run_folder"), "node_ip": metrics.get("node_ip"), "node_id": metrics.get("node_id"),
        })
    return records


def last_line(e: BaseException) -> str:
    """The error's last non-empty line (at most 300 characters): a trial's error is a traceback, its message comes last."""
    text = str(e).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(e).__name__
