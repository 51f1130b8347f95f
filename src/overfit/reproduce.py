"""`overfit reproduce`: run the original experiment's six presets and judge its findings.

    <out>/runs/<preset>-s<seed>/   ordinary run folders (resume them, open them in the lab)
    <out>/report/                  index.html, report.md, results.json, grid video, figures

Runs that are already complete are reused and interrupted ones resumed, so an
interrupted `reproduce` continues where it stopped when the same command is run
again. A run that diverges is recorded as such (a `diverged.json` beside its
checkpoint) and judged as not converging; it does not stop the others.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import __version__, findings
from .config import RunConfig
from .errors import OverfitError
from .findings import Curve
from .presets import PRESETS, get_preset
from .runs import RunFolder, load_checkpoint, read_metrics, write_atomic
from .spectrum import BandAnalyzer, first_below
from .targets import Target
from .training import Trainer, TrainingDiverged

REPRODUCE_PRESETS = ("relu_raw", "relu_1", "tanh_1", "cos_1", "cos_3", "bn_relu")
# Defaults sized so the whole command (12 runs) finishes well under 15 minutes on two
# CPU cores while every finding is visible; --steps 100000 is the original's length.
DEFAULT_STEPS = 20_000
DEFAULT_EVAL_EVERY = 500
DEFAULT_SEEDS = 2
DIVERGED = "diverged.json"


class ReproduceError(OverfitError):
    """The output folder holds runs that do not match what was asked for."""


@dataclass(frozen=True)
class PlannedRun:
    preset: str
    seed: int
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.preset}-s{self.seed}"


def default_out(loss: str, init: str) -> Path:
    """reports/reproduce, with the variant in the name when loss or init is not the default."""
    suffix = "".join([f"-{loss}" if loss != "cross_entropy" else "", f"-init_{init}" if init != "original" else ""])
    return Path("reports") / f"reproduce{suffix}"


def plan(overrides: dict[str, Any], steps: int, eval_every: int, seeds: int) -> list[PlannedRun]:
    """Every (preset, seed) run with its config; `overrides` are dotted config keys for all runs."""
    runs = []
    for seed in range(seeds):
        for preset in REPRODUCE_PRESETS:
            cfg = get_preset(preset).with_overrides(
                {**overrides, "seed": seed, "schedule.steps": steps, "schedule.eval_every": eval_every})
            runs.append(PlannedRun(preset, seed, cfg))
    # Seed 0 of every preset comes first: an early stop still leaves one complete comparison.
    return runs


def _same_run(a: RunConfig, b: RunConfig) -> bool:
    """Equal except for the step budget (a longer budget extends a run)."""
    def strip(c: RunConfig) -> RunConfig:
        return replace(c, schedule=replace(c.schedule, steps=1))

    return strip(a) == strip(b)


def run_one(planned: PlannedRun, target: Target, runs_dir: Path, make_callback: Callable[[Trainer], Callable]) -> str:
    """Train (or resume, or reuse) one run; returns 'done', 'reused' or 'diverged'."""
    path = runs_dir / planned.name
    if path.exists():
        folder = RunFolder.open(path)
        saved = folder.config()
        if not _same_run(saved, planned.config):
            raise ReproduceError(f"{path} holds a run with a different config; use another --out or remove it")
        if (path / DIVERGED).exists():
            return "diverged"
        folder.lock()
        try:
            state = load_checkpoint(path)
            if state["step"] >= planned.config.schedule.steps:
                return "reused"
            trainer = Trainer(planned.config, folder.target())
            folder.prepare_resume(trainer, state)
            return _train(trainer, folder, make_callback)
        finally:
            folder.unlock()
    folder = RunFolder.create(runs_dir, planned.name, planned.preset)
    try:
        trainer = Trainer(planned.config, target)
        folder.start(trainer)
        return _train(trainer, folder, make_callback)
    finally:
        folder.unlock()


def _train(trainer: Trainer, folder: RunFolder, make_callback: Callable[[Trainer], Callable]) -> str:
    watch = make_callback(trainer)

    def on_event(event: Any) -> None:
        watch(event)
        folder(event)

    try:
        result = trainer.run(on_event)
    except TrainingDiverged as e:
        write_atomic(folder.path / DIVERGED, json.dumps({"step": e.step, "value": repr(e.value)}) + "\n")
        return "diverged"
    return "interrupted" if result.interrupted else "done"


# -- analysis -------------------------------------------------------------------

def _stat(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "spread": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "spread": float(arr.std(ddof=1)) if arr.size > 1 else 0.0}


def analyse(out_dir: Path, runs: list[PlannedRun], target: Target, meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """results.json's content and the seed-0 frames per preset, from the run folders on disk."""
    analyzer = BandAnalyzer(target.labels.astype(np.float64))
    majority = target.majority_rate
    presets: dict[str, Any] = {}
    curves: dict[str, list[Curve]] = {}
    spectrum: dict[str, Any] = {}
    first_by_run: dict[str, list[int | None]] = {}
    grid_frames: dict[str, list[tuple[int, np.ndarray]]] = {}
    for planned in runs:
        run_dir = out_dir / "runs" / planned.name
        history = read_metrics(run_dir)
        diverged = json.loads((run_dir / DIVERGED).read_text())["step"] if (run_dir / DIVERGED).exists() else None
        entry = presets.setdefault(planned.preset, {"description": PRESETS[planned.preset].description,
                                                    "config": replace(planned.config, seed=0).to_dict(), "runs": []})
        entry["runs"].append({
            "seed": planned.seed, "run_dir": os.path.relpath(run_dir, out_dir), "history": history,
            "status": "diverged" if diverged is not None else "done", "diverged_step": diverged,
            "wall_seconds": history[-1]["train_seconds"] if history else None,
        })
        if not history:
            continue
        curves.setdefault(planned.preset, []).append(Curve(
            [r["step"] for r in history], [r["dense_acc"] for r in history], [r["dense_pred_bg"] for r in history], diverged))
        frames = RunFolder(run_dir).read_frames([r["step"] for r in history])
        errors = np.array([analyzer.errors(gray.astype(np.float64) / 255.0) for _, gray in frames])
        steps = [s for s, _ in frames]
        if planned.preset != "relu_raw" and len(frames):
            # relu_raw is the run that does not learn: its band order says nothing.
            first_by_run[planned.name] = first_below(steps, errors, findings.BAND_THRESHOLD)
        if planned.seed == 0:
            grid_frames[planned.preset] = frames
            spectrum[planned.preset] = {
                "steps": steps,
                "errors": [[None if not np.isfinite(v) else float(v) for v in row] for row in errors],
                "first_below": first_below(steps, errors, findings.BAND_THRESHOLD) if len(frames) else [],
            }

    table = []
    for preset in REPRODUCE_PRESETS:
        cs = curves.get(preset, [])
        n = len(presets.get(preset, {}).get("runs", []))
        steps_to = {}
        for t in (0.90, 0.95, 0.99):
            reached = [findings.steps_to(c, t) for c in cs]
            got = [r for r in reached if r is not None]
            steps_to[f"{t:g}"] = {**_stat(got), "reached": len(got), "of": n}
        n_div = sum(c.diverged_step is not None for c in cs)
        table.append({
            "preset": preset, "steps_to": steps_to,
            "final_acc": _stat([c.acc[-1] for c in cs]),
            "final_iou": _stat([r["history"][-1]["dense_iou"] for r in presets[preset]["runs"] if r["history"]]),
            "wall_seconds": _stat([r["wall_seconds"] for r in presets[preset]["runs"] if r["wall_seconds"] is not None]),
            "status": f"{n - n_div}/{n} done" if not n_div else f"{n_div} of {n} diverged",
        })

    verdicts = findings.judge_all(curves, majority, first_by_run, meta["eval_every"])
    results = {
        "meta": {**meta, "majority_rate": majority},
        "presets": presets,
        "table": table,
        "spectrum": {"band_edges": [float(e) for e in analyzer.edges], "threshold": findings.BAND_THRESHOLD, "presets": spectrum},
        "findings": [f.to_dict() for f in verdicts],
        "variants": [],
    }
    return results, grid_frames


def sibling_variants(out_dir: Path) -> list[dict[str, Any]]:
    """Verdicts of other reproduce folders beside this one (other loss or init), for comparison."""
    variants = []
    for other in sorted(out_dir.parent.glob("*/report/results.json")):
        if other.parent.parent.resolve() == out_dir.resolve():
            continue
        try:
            data = json.loads(other.read_text())
            meta = data["meta"]
            verdicts = {str(f["id"]): f["verdict"] for f in data["findings"]}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        variants.append({"name": f"loss {meta.get('loss')}, init {meta.get('init')}, {meta.get('steps'):,} steps",
                         "folder": os.path.relpath(other.parent.parent, out_dir), "verdicts": verdicts})
    return variants


def make_meta(target: Target, steps: int, eval_every: int, seeds: int, loss: str, init: str, command: str) -> dict[str, Any]:
    """The report's header facts known before any run starts."""
    return {"title": "OVERFIT reproduction", "target": target.source, "height": target.height, "width": target.width,
            "steps": steps, "eval_every": eval_every, "seeds": list(range(seeds)), "loss": loss, "init": init,
            "started": _dt.datetime.now().isoformat(timespec="seconds"), "command": command}


def machine_info() -> dict[str, Any]:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "machine": {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "platform": platform.platform()},
        "versions": {"overfit": __version__, "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__},
    }


# -- the whole command -----------------------------------------------------------

def reproduce(out_dir: Path, target: Target, runs: list[PlannedRun], meta: dict[str, Any],
              make_callback: Callable[[PlannedRun, Trainer], Callable], announce: Callable[[str], None]) -> dict[str, Any]:
    """Run (or resume) every planned run, then analyse and write the report; returns results.json's content.

    Stops early, without a report, if a run is interrupted (Ctrl-C); returns {} then.
    """
    runs_dir = out_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    for i, planned in enumerate(runs, 1):
        t0 = time.perf_counter()
        status = run_one(planned, target, runs_dir, lambda trainer: make_callback(planned, trainer))
        if status == "interrupted":
            return {}
        history = read_metrics(runs_dir / planned.name)
        acc = f"dense accuracy {history[-1]['dense_acc']:.3f}" if history else "no evaluation"
        announce(f"[{i}/{len(runs)}] {planned.name}: {status}, {acc} ({time.perf_counter() - t0:.0f} s)")

    # Training time of every run, whichever invocation trained it, plus the analysis below.
    started = time.perf_counter()
    trained = sum((read_metrics(runs_dir / p.name) or [{"train_seconds": 0}])[-1]["train_seconds"] for p in runs)
    meta = {**meta, **machine_info(), "finished": _dt.datetime.now().isoformat(timespec="seconds"),
            "wall_seconds": round(trained + time.perf_counter() - started, 1)}
    from .report import write_report

    results, frames = analyse(out_dir, runs, target, meta)
    results["variants"] = sibling_variants(out_dir)
    report_dir = out_dir / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(report_dir / "results.json", json.dumps(results, indent=1) + "\n")
    write_report(report_dir, results, frames, target.gray)
    return results
