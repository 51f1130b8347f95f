"""`overfit reproduce`: run the original experiment's six presets and judge its findings.

    <out>/runs/<preset>-s<seed>/   ordinary run folders (resume them, open them in the lab)
    <out>/report/                  index.html, report.md, results.json, grid video, figures

With several variants (`--variant KEY=V1,V2,...`, every combination trained; variants.py):

    <out>/variants/<key=value,...>/runs/<preset>-s<seed>/   each combination's run folders
    <out>/variants/<key=value,...>/report/                  its full report, as above
    <out>/report/                                           the findings x variants comparison

plan.py: what to train and training it through `Session` (finished runs reused,
interrupted ones resumed, diverged ones recorded); analysis.py: the run folders to
results.json; findings.py: whether each finding holds in each seed, pure functions of curves;
verdicts.py: the share of seeds, its interval and the verdict from the declared rules. The error per
spatial-frequency band is `overfit.spectrum`'s (every evaluation also records it live), and
the report itself is written by `overfit.report`.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import ReproduceError
from ..files import write_atomic
from ..runs import RunFolder
from .analysis import analyse, compare_variants, machine_info, sibling_variants
from .plan import (
    BASE_SETTINGS,
    DEFAULT_EVAL_EVERY,
    DEFAULT_EVAL_EVERY_LATE,
    DEFAULT_EVAL_LATE_FROM,
    DEFAULT_SEEDS,
    DEFAULT_STEPS,
    MAX_RUNS,
    MAX_SEEDS,
    LOSSES,
    MODE,
    REPRODUCE_PRESETS,
    PlannedRun,
    default_out,
    EarlyStop,
    make_meta,
    open_run,
    plan,
    train_all,
)
from .variants import MAX_VARIANTS, Variant, combinations, parse_variants

__all__ = ["BASE_SETTINGS", "DEFAULT_EVAL_EVERY", "DEFAULT_EVAL_EVERY_LATE", "DEFAULT_EVAL_LATE_FROM", "DEFAULT_SEEDS", "DEFAULT_STEPS",
           "LOSSES", "MAX_RUNS", "MAX_SEEDS", "MAX_VARIANTS", "MODE", "REPRODUCE_PRESETS", "EarlyStop", "PlannedRun",
           "ReproduceError", "Variant", "analyse", "arithmetic_limit", "combinations", "compare_variants", "default_out",
           "machine_info", "make_meta", "open_run", "parse_variants", "plan", "reproduce", "sibling_variants", "train_all",
           "variant_dir"]


def reproduce(out_dir: Path, target: Any, runs: list[PlannedRun], meta: dict[str, Any],
              make_callback: Callable[[PlannedRun, Any], Callable], announce: Callable[[str], None],
              address: str | None = None) -> dict[str, Any]:
    """Run (or resume) every planned run, then analyse and write the report; returns results.json's content.

    Every run still to train, of every variant, is opened in one memory budget and trains in one
    call, runs of one kind stacked. `make_callback(planned, trainer)` gives each run's event
    callback; `announce` gets a line per run. Stops, without a report, if a run is interrupted
    (Ctrl-C); returns {} then. Runs of several variants (`PlannedRun.variant`) get a folder per
    variant (`variant_dir`) with its own report, and OUT/report compares them (`compare_variants`).
    With `address`, the runs train on that Ray cluster instead (`cluster.train_on_cluster`), in
    the same folders; the analysis and the report are the same.
    """
    began = time.perf_counter()
    variants = list(dict.fromkeys(planned.variant for planned in runs))
    folders = {variant: variant_dir(out_dir, variant, len(variants)) for variant in variants}
    runs_dirs = {planned.label: folders[planned.variant] / "runs" for planned in runs}
    for folder in folders.values():
        (folder / "runs").mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if address is None:
        endings, trained = _train_here(target, runs, runs_dirs, make_callback, announce)
    else:
        from .cluster import train_on_cluster

        endings, trained = train_on_cluster(address, out_dir, target, runs, runs_dirs, announce)
    for i, planned in enumerate(runs, 1):
        history = RunFolder(runs_dirs[planned.label] / planned.name).metrics()
        acc = f"dense accuracy {history[-1]['dense_acc']:.3f} at step {history[-1]['step']:,}" if history else "no evaluation"
        announce(f"[{i}/{len(runs)}] {planned.label}: {endings[planned.label]}, {acc}")
    announce(f"{time.perf_counter() - t0:.0f} s of training")
    # The wall time of every invocation that trained (the runs of a stack train at once: their own
    # training times would count a stacked step once per run), kept beside the runs.
    wall = _add_wall_time(out_dir, time.perf_counter() - began if trained else 0.0)
    if "interrupted" in endings.values():
        return {}

    # The wall time covers every variant's runs, and so does the arithmetic limit beside it.
    meta = {**meta, **machine_info(), **arithmetic_limit([(p, runs_dirs[p.label]) for p in runs], target, runs[0].config.device),
            "finished": _dt.datetime.now().isoformat(timespec="seconds"), "wall_seconds": round(wall, 1),
            **({"cluster": address} if address is not None else {})}
    from ..report import write_report, write_variants_report

    compared = []
    for variant in variants:
        group = [planned for planned in runs if planned.variant == variant]
        config = group[0].config
        variant_meta = {**meta, "loss": config.loss, "init": config.model.init, "variant": variant.name,
                        "settings": variant.overrides, "variants_together": len(variants)}
        results, frames = analyse(folders[variant], group, target, variant_meta)
        # One variant: the reports of others beside it are compared; several: OUT/report compares them all.
        results["variants"] = sibling_variants(out_dir) if len(variants) == 1 else []
        _write_report(folders[variant] / "report", results, lambda d, r: write_report(d, r, frames, target.gray))
        compared.append((variant, os.path.relpath(folders[variant], out_dir), results))
    if len(variants) == 1:
        return compared[0][2]
    combined = compare_variants(meta, compared)
    _write_report(out_dir / "report", combined, lambda d, r: write_variants_report(d, r, [res for _, _, res in compared]))
    return combined


def _train_here(target: Any, runs: list[PlannedRun], runs_dirs: dict[str, Path], make_callback: Callable[[PlannedRun, Any], Callable],
                announce: Callable[[str], None]) -> tuple[dict[str, str], bool]:
    """Every run still to train, opened in one memory budget and trained in this process in one call; every run's
    ending by its label, and whether any trained."""
    from ..budget import Pool

    opened: list[tuple[PlannedRun, Any]] = []
    endings: dict[str, str] = {}
    pool = Pool()  # the runs that train, train at the same time: one memory budget for all of them
    try:
        for planned in runs:
            status, session = open_run(planned, target, runs_dirs[planned.label], pool)
            if session is None:
                endings[planned.label] = status
            else:
                opened.append((planned, session))
    except BaseException:
        for _, session in opened:
            session.close()
        raise
    if opened:
        announce(f"Training {len(opened)} run(s) together; {len(runs) - len(opened)} already finished")
    endings.update(train_all(opened, target, make_callback))
    return endings, bool(opened)


def variant_dir(out_dir: Path, variant: Variant, count: int) -> Path:
    """The folder of a variant's runs and report: OUT itself when the reproduction has one, else OUT/variants/<name>."""
    return out_dir if count == 1 else out_dir / "variants" / variant.name


def _write_report(report_dir: Path, results: dict[str, Any], write: Callable[[Path, dict[str, Any]], None]) -> None:
    """results.json, then the report's files."""
    report_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(report_dir / "results.json", json.dumps(results, indent=1) + "\n")
    write(report_dir, results)


WALL = "wall.json"


def _add_wall_time(out_dir: Path, seconds: float) -> float:
    """Add `seconds` to the reproduction's wall time kept in OUT/wall.json; the total."""
    path = out_dir / WALL
    try:
        total = float(json.loads(path.read_text())["seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        total = 0.0
    total += seconds
    if seconds:
        write_atomic(path, json.dumps({"seconds": round(total, 3)}) + "\n")
    return total


def arithmetic_limit(runs: list[tuple[PlannedRun, Path]], target: Any, device: str) -> dict[str, Any]:
    """What the reproduction's arithmetic would take at this machine's fp32 matmul peak, measured now.

    The model-steps every run trained and its dense evaluations, in FLOPs as `budget.estimate`
    counts them, divided by `devices.matmul_peak`: the time no implementation can beat here. `runs`: each
    planned run with the folder that holds its run folder.
    """
    from ..budget import estimate
    from ..devices import matmul_peak

    steps = evaluations = 0
    flops = 0.0
    for planned, runs_dir in runs:
        history = RunFolder(runs_dir / planned.name).metrics()
        est = estimate(planned.config, (target.height, target.width))
        trained = history[-1]["step"] if history else 0
        steps, evaluations = steps + trained, evaluations + len(history)
        flops += trained * est.flops_per_step + len(history) * est.flops_per_evaluation
    peak = matmul_peak(device)
    return {"model_steps": steps, "evaluations": evaluations, "peak_gflops": round(peak / 1e9, 1),
            "arithmetic_seconds": round(flops / peak, 2)}
