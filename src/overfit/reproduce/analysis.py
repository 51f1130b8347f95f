"""From the reproduction's run folders to results.json: curves, the steps-to table, spectral bands, verdicts over the seeds.

Nothing is trained here; everything is read back from the run folders on disk, so the
analysis is the same whichever invocation trained each run.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..presets import PRESETS
from ..runs import RunFolder
from ..safefiles import read_plain
from . import findings, units
from .findings import Curve
from .plan import REPRODUCE_PRESETS, PlannedRun, ending
from ..spectrum import BandAnalyzer, first_below


def _stat(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"mean": None, "spread": None}
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "spread": float(arr.std(ddof=1)) if arr.size > 1 else 0.0}


def _status(runs: list[dict[str, Any]]) -> str:
    """How a preset's runs ended, e.g. '2 trained 100,000 steps' or '1 stopped at 41,000, 1 trained 100,000 steps'."""
    parts = []
    for run in runs:
        end = run["ending"]
        parts.append({"budget": f"trained {end['step']:,} steps", "stopped": f"stopped early at {end['step']:,}",
                      "diverged": f"diverged at {end['step']:,}", "unfinished": f"unfinished at {end['step']:,}"}[end["reason"]])
    counted: dict[str, int] = {}
    for part in parts:
        counted[part] = counted.get(part, 0) + 1
    return ", ".join(f"{n} {part}" for part, n in counted.items())


def early_stop_note(presets: dict[str, Any], first_by_run: dict[str, list[int | None]], n_bands: int) -> str:
    """How the early-stop rule fared, in one sentence: how many runs it stopped, or why it could not fire.

    The rule (`plan.EarlyStop`) stops a run once every reported accuracy is reached and every spectral band
    learned, because finding 6 reads the step at which each band is first learned, up to the budget: stopping
    before a band is learned would cut that record short. So where some band is learned by no run, no run stops.
    """
    runs = [run for entry in presets.values() for run in entry["runs"]]
    stopped = sum(run["ending"]["reason"] == "stopped" for run in runs)
    if stopped:
        return f"{stopped} of {len(runs)} runs stopped early (every reported accuracy reached and every spectral band learned)"
    never = [b + 1 for b in range(n_bands) if first_by_run and all(len(f) > b and f[b] is None for f in first_by_run.values())]
    if never:
        bands = ", ".join(str(b) for b in never)
        return (f"no run stopped early, and none could here: a run stops only once it has learned every spectral band, "
                f"and no run learned band{'s' if len(never) > 1 else ''} {bands} (error below {findings.BAND_THRESHOLD}) "
                f"within its budget")
    return "no run stopped early: none reached every reported accuracy and learned every spectral band within its budget"


def analyse(out_dir: Path, runs: list[PlannedRun], target: Any, meta: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """results.json's content and the seed-0 frames per preset, from the run folders on disk."""
    analyzer = BandAnalyzer(target.labels.astype(np.float64))
    majority = target.majority_rate
    presets: dict[str, Any] = {}
    curves: dict[str, list[Curve]] = {}
    spectrum: dict[str, Any] = {}
    first_by_run: dict[str, list[int | None]] = {}
    grid_frames: dict[str, list[tuple[int, np.ndarray]]] = {}
    insides: dict[str, dict[str, Any]] = {}
    for planned in runs:
        run_dir = out_dir / "runs" / planned.name
        folder = RunFolder(run_dir)
        history = folder.metrics()
        end = ending(run_dir, planned.config.schedule.steps, history)
        diverged = end["step"] if end["reason"] == "diverged" else None
        entry = presets.setdefault(planned.preset, {"description": PRESETS[planned.preset].description,
                                                    "config": replace(planned.config, seed=0).to_dict(), "runs": []})
        entry["runs"].append({
            "seed": planned.seed, "run_dir": os.path.relpath(run_dir, out_dir), "history": history,
            "status": "diverged" if diverged is not None else "done", "diverged_step": diverged,
            "ending": end, "wall_seconds": history[-1]["train_seconds"] if history else None,
        })
        if not history:
            continue
        curves.setdefault(planned.preset, []).append(Curve(
            [r["step"] for r in history], [r["dense_acc"] for r in history], [r["dense_pred_bg"] for r in history], diverged,
            planned.seed))
        frames = folder.read_frames([r["step"] for r in history])
        errors = np.array([analyzer.errors(gray.astype(np.float64) / 255.0) for _, gray in frames])
        steps = [s for s, _ in frames]
        if planned.preset != "relu_raw" and len(frames):
            # relu_raw is the run that does not learn: its band order says nothing.
            first_by_run[planned.name] = first_below(steps, errors, findings.BAND_THRESHOLD)
        if planned.seed == 0:
            grid_frames[planned.preset] = frames
            insides[planned.preset] = {**units.summarise(history, folder.weight_steps(), curves[planned.preset][-1]),
                                       "run_dir": os.path.relpath(run_dir, out_dir)}
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
        table.append({
            "preset": preset, "steps_to": steps_to,
            "final_acc": _stat([c.acc[-1] for c in cs]),
            "final_iou": _stat([r["history"][-1]["dense_iou"] for r in presets[preset]["runs"] if r["history"]]),
            "wall_seconds": _stat([r["wall_seconds"] for r in presets[preset]["runs"] if r["wall_seconds"] is not None]),
            "status": _status(presets[preset]["runs"]),
        })

    verdicts = findings.judge_all(curves, majority, first_by_run, meta["eval_every"])
    sentences = units.evidence(insides, meta, spectrum, findings.BAND_THRESHOLD)
    results = {
        "meta": {**meta, "majority_rate": majority, "early_stop": early_stop_note(presets, first_by_run, analyzer.n_bands)},
        "presets": presets,
        "table": table,
        "spectrum": {"band_edges": [float(e) for e in analyzer.edges], "threshold": findings.BAND_THRESHOLD, "presets": spectrum},
        "findings": [{**f.to_dict(), "evidence": sentences.get(f.id)} for f in verdicts],
        "rules": findings.rules(majority),
        "inside": insides,
        "variants": [],
    }
    return results, grid_frames


def compare_variants(meta: dict[str, Any], compared: list[tuple[Any, str, dict[str, Any]]]) -> dict[str, Any]:
    """OUT/report/results.json of a reproduction with several variants, from each (variant, folder, results).

    Holds every variant's findings (verdict, share, interval, sentence, per seed), its steps-to table and how
    its runs ended; the curves themselves stay in each variant's own results.json (`folder`/report/).
    """
    axes: dict[str, list[str]] = {}
    for variant, _, _ in compared:
        for key, value in variant.settings:
            if value not in axes.setdefault(key, []):
                axes[key].append(value)
    first = compared[0][2]
    return {
        "meta": {**meta, "majority_rate": first["meta"].get("majority_rate"), "axes": axes},
        "rules": first["rules"],
        "variants": [{
            "name": variant.name, "settings": variant.overrides, "folder": folder,
            "loss": results["meta"]["loss"], "init": results["meta"]["init"],
            "verdicts": {str(f["id"]): f["verdict"] for f in results["findings"]},
            "findings": results["findings"], "table": results["table"],
        } for variant, folder, results in compared],
    }


def sibling_variants(out_dir: Path) -> list[dict[str, Any]]:
    """Verdicts of other one-variant reproduce folders beside this one (other loss or init), for comparison."""
    variants = []
    for other in sorted(out_dir.parent.glob("*/report/results.json")):
        if other.parent.parent.resolve() == out_dir.resolve():
            continue
        try:
            data = json.loads(read_plain(other.parent, other.name, kind="results"))  # another folder: no link, no FIFO
            meta = data["meta"]
            verdicts = {str(f["id"]): f["verdict"] for f in data["findings"]}
        except (OSError, ValueError, KeyError, TypeError):
            continue
        variants.append({"name": f"loss {meta.get('loss')}, init {meta.get('init')}, {meta.get('steps'):,} steps",
                         "folder": os.path.relpath(other.parent.parent, out_dir), "verdicts": verdicts})
    return variants


def machine_info() -> dict[str, Any]:
    """The machine and library versions the report was made with."""
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
