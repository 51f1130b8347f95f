"""A reproduction's runs on a Ray cluster (`overfit reproduce --address`): its stacks as a sweep's trials.

The runs still to train are sorted into stacks as they would train here (`stacked.stack_groups`);
each stack is one trial of `sweep.tune.run_groups`, the machinery of `overfit sweep`'s trials
(the same cluster connection, retries and Ctrl-C). In its worker a stack opens its runs with
`plan.open_run` and trains them with `plan.train_all`, early stop included, exactly as the
reproduction does in-process; the run folders (under OUT, on a file system every node sees)
are the one record. A stack whose worker died is retried and resumes its runs from their last
checkpoints; a Ctrl-C stops the trials, and the same command continues from the run folders.
Where each stack trained is kept in OUT/cluster.json.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ReproduceError, RunBusyError
from ..files import write_atomic
from .plan import PlannedRun, open_run, run_status, train_all

CLUSTER = "cluster.json"  # OUT/cluster.json: each stack's runs and the node that trained it
MAX_FAILURES = 3  # tries of a stack after its worker died, as `overfit sweep --max-failures` defaults
BUSY_WAIT_S = 30.0  # how long a retried stack waits for the lock of a run its dead worker held


def train_on_cluster(address: str, out_dir: Path, target: Any, runs: list[PlannedRun], runs_dirs: dict[str, Path],
                     announce: Callable[[str], None]) -> tuple[dict[str, str], bool]:
    """Train the runs of `runs` that still need it on the Ray cluster at `address`: every run's ending by its label
    ('done', 'stopped', 'diverged', 'reused', 'interrupted'), and whether any trained."""
    from ..stacked import stack_groups
    from ..sweep import tune

    tune.require_ray()
    endings: dict[str, str] = {}
    pending = []
    for planned in runs:  # every folder checked before the cluster is joined: a wrong --out fails at once
        status = run_status(planned, runs_dirs[planned.label])
        if status in ("resume", "start"):
            pending.append(planned)
        else:
            endings[planned.label] = status
    if not pending:
        return endings, False
    groups = [[pending[i] for i in group] for group in stack_groups([p.config for p in pending])]
    tune.connect(address)
    import ray

    try:
        announce(f"Training {len(pending)} run(s) as {len(groups)} stack(s) on the Ray cluster at {address}; "
                 f"{len(runs) - len(pending)} already finished")
        storage = out_dir / "ray"
        if (storage / tune.GROUPS).is_dir() and not (storage / tune.GROUPS).is_symlink():
            shutil.rmtree(storage / tune.GROUPS)  # Ray's bookkeeping of an earlier invocation; the run folders hold the runs
        job = _StackJob(groups, {p.label: str(runs_dirs[p.label]) for p in pending}, target)
        with tune.remembered_interrupt() as interrupted:
            try:
                grid = tune.run_groups(job, len(groups), storage, MAX_FAILURES)
            except KeyboardInterrupt:
                grid = None
        stopped = grid is None or interrupted() or tune.unfinished(grid, len(groups)) > 0
        if grid is not None:
            _record_nodes(out_dir, address, groups, grid)
            errors = [r.error for r in grid if r.error is not None]
            if errors and not stopped:  # a stack that failed on every try: its error's own line
                raise ReproduceError(f"a stack failed on the cluster: {tune.last_line(errors[0])}", field="address")
    finally:
        ray.shutdown()
    from ..runs import RunFolder

    for planned in pending:  # as its folder records it: a stack Ctrl-C stopped left its runs interrupted
        ending = RunFolder(runs_dirs[planned.label] / planned.name).ending()
        endings[planned.label] = "interrupted" if ending is None else {"finished": "done"}.get(ending.how, ending.how)
    return endings, True


class _StackJob:
    """What a trial runs: stack `index` of `groups`, opened and trained in the worker (picklable for Ray)."""

    def __init__(self, groups: list[list[PlannedRun]], runs_dirs: dict[str, str], target: Any) -> None:
        self.groups, self.runs_dirs, self.target = groups, runs_dirs, target

    def __call__(self, index: int) -> None:
        import os

        from ..budget import Pool, default_budget

        # The trials on a node train at the same time, each on one of its cores: each gets that share of the memory.
        pool = Pool(int(default_budget() / (os.cpu_count() or 1)), source_field=None)
        opened: list[tuple[PlannedRun, Any]] = []
        try:
            for planned in self.groups[index]:
                status, session = _open_waiting(planned, self.target, Path(self.runs_dirs[planned.label]), pool)
                if session is not None:
                    opened.append((planned, session))
        except BaseException:
            for _, session in opened:
                session.close()
            raise
        train_all(opened, self.target, lambda planned, trainer: _quiet, interruptible=False)


def _open_waiting(planned: PlannedRun, target: Any, runs_dir: Path, pool: Any) -> tuple[str, Any]:
    """`open_run`, waiting up to BUSY_WAIT_S while the run is locked (a retried stack's dead worker may still hold it)."""
    deadline = time.monotonic() + BUSY_WAIT_S
    while True:
        try:
            return open_run(planned, target, runs_dir, pool)
        except RunBusyError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def _record_nodes(out_dir: Path, address: str, groups: list[list[PlannedRun]], grid: Any) -> None:
    """OUT/cluster.json: per stack, its runs and the node whose report it ended with (where a retry ran, the retry's)."""
    nodes: dict[int, dict[str, Any]] = {}
    for result in grid:
        metrics = dict(result.metrics or {})
        if "group" in metrics:
            nodes[int(metrics["group"])] = {"node_ip": metrics.get("node_ip"), "node_id": metrics.get("node_id")}
    stacks = [{"runs": [p.label for p in group], **nodes.get(i, {"node_ip": None, "node_id": None})} for i, group in enumerate(groups)]
    write_atomic(out_dir / CLUSTER, json.dumps({"address": address, "stacks": stacks}, indent=1) + "\n")


def _quiet(event: Any) -> None:
    """A worker's runs report to their folders only (no progress bars on a worker)."""
