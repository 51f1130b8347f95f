"""What a finished sweep leaves: `results.csv` (one row per trial), `report/index.html` and `report.md`.

The metrics in each row are read from the trial's own run folder (`metrics.jsonl`), so the
table and the run folders always agree; Ray supplies only what it alone knows (stop or
error, wall time, node).
"""

from __future__ import annotations

import csv
import html
import math
import statistics
from pathlib import Path
from typing import Any

from .. import metricinfo
from .spec import THRESHOLDS, SweepSpec


def rows(spec: SweepSpec, sweep_dir: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial: swept fields, seed, final and best metric, steps to thresholds (a headline in [0, 1]: accuracy), stop reason, wall time, node, run folder."""
    from ..modes import get_mode

    steps = spec.config.schedule.steps
    out = []
    for rec in sorted(records, key=lambda r: r["trial_id"]):
        folder, history, unread = _history(sweep_dir, str(rec.get("run_folder") or sweep_dir / "runs" / f"trial-{rec['trial_id']}"))
        cfg_seed = rec["params"].get("seed", spec.config.seed)
        row: dict[str, Any] = {"trial": rec["trial_id"]}
        row.update({key: rec["params"].get(key, "") for key in spec.grid})
        row.update({key: rec["params"].get(key, "") for key in spec.random})
        row["seed"] = cfg_seed
        values = [r[spec.metric] for r in history if isinstance(r.get(spec.metric), (int, float))]
        row["final_" + spec.metric] = values[-1] if values else ""
        best = max if spec.mode == "max" else min
        row["best_" + spec.metric] = best(values) if values else ""
        # With held-out pixels, the headline on the training and the held-out pixels side by side.
        for key in held_out_keys(spec):
            if key != spec.metric and history and isinstance(history[-1].get(key), (int, float)):
                row["final_" + key] = history[-1][key]
        row["steps"] = history[-1]["step"] if history else 0
        # Steps to reach each threshold, for a headline that is a fraction (accuracy).
        headline = get_mode(spec.config.data.mode).headline
        if metricinfo.info(headline).bounds == (0.0, 1.0):
            for t in THRESHOLDS:
                reached = [r["step"] for r in history if isinstance(r.get(headline), (int, float)) and r[headline] >= t]
                row[f"steps_to_{t:g}"] = reached[0] if reached else ""
        row["stop"] = "error" if rec.get("error") or unread else ("done" if row["steps"] >= _steps_of(folder, steps) else "asha-stopped")
        row["error"] = rec.get("error") or unread
        row["wall_s"] = round(rec["wall_s"], 2) if isinstance(rec.get("wall_s"), (int, float)) else ""
        # The step a retried trial continued from (its worker died), else empty.
        row["resumed_at"] = rec["last"].get("resumed_at", "")
        row["node_ip"], row["node_id"] = rec.get("node_ip") or "", rec.get("node_id") or ""
        row["run_folder"] = str(folder)
        out.append(row)
    return out


def _history(sweep_dir: Path, named: str) -> tuple[Path, list[dict[str, Any]], str]:
    """The trial's run folder, its evaluation records (those with a step number) and why none could be read ("" when
    they could). The folder must be one of this sweep's trial folders (no link: nothing elsewhere is read into the
    report); its records are read as untrusted input (`RunFolder.metrics`: no FIFO, no link, bounded)."""
    from ..errors import OverfitError
    from ..runs import RunFolder
    from .tune import trial_folder

    try:
        folder = trial_folder(sweep_dir / "runs", named)
        records = RunFolder(folder).metrics()
    except (OverfitError, OSError) as e:
        return Path(named), [], str(e).splitlines()[0] if str(e) else type(e).__name__
    return folder, [r for r in records if type(r.get("step")) is int], ""


def held_out_keys(spec: SweepSpec) -> tuple[str, str]:
    """The mode's headline over the training pixels and over the held-out pixels (`fit_psnr`, `test_psnr`)."""
    from ..modes import get_mode

    mode = get_mode(spec.config.data.mode)
    return mode.fit_headline, mode.test_headline


def _steps_of(folder: Path, default: int) -> int:
    """The trial's own step budget (schedule.steps may be swept)."""
    import json

    from ..safefiles import read_plain

    try:
        return int(json.loads(read_plain(folder, "config.json", kind="config"))["schedule"]["steps"])
    except (OSError, ValueError, KeyError, TypeError):
        return default


def write_csv(table: list[dict[str, Any]], path: Path) -> None:
    import io

    from ..files import write_atomic

    header = list(dict.fromkeys(k for row in table for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header)
    writer.writeheader()
    writer.writerows(table)
    write_atomic(path, buf.getvalue().encode())


def ranked(spec: SweepSpec, table: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Trials with a final metric, best first."""
    key = "final_" + spec.metric
    scored = [r for r in table if isinstance(r[key], (int, float)) and math.isfinite(r[key])]
    return sorted(scored, key=lambda r: r[key], reverse=spec.mode == "max")


def write_report(spec: SweepSpec, sweep_dir: Path, table: list[dict[str, Any]]) -> Path:
    """report/index.html (figures, best and worst pictures, grid video of the best) and report.md; the HTML's path."""
    from ..errors import OverfitError
    from ..files import write_atomic
    from ..safefiles import NotPlainFile, plain_folder
    from . import figures

    out = sweep_dir / "report"
    try:  # a link there would have the report written (and its pictures overwritten) wherever it points
        plain_folder(sweep_dir, "report")
    except NotPlainFile as e:
        raise OverfitError(f"{sweep_dir}: the report is not written: {e}") from None
    out.mkdir(parents=True, exist_ok=True)
    best = ranked(spec, table)
    parts = [f"<h1>Sweep {html.escape(spec.name)}</h1>",
             f"<p>{len(table)} trials; metric <b>{html.escape(spec.metric)}</b> ({spec.mode}); scheduler {html.escape(spec.scheduler)}; "
             f"search {html.escape(spec.search)}.</p>"]
    for field in [*spec.grid, *spec.random]:
        name = f"metric_vs_{field.replace('.', '_')}.png"
        figures.metric_vs_field(spec, table, field, out / name)
        parts.append(f"<h2>{html.escape(spec.metric)} against {html.escape(field)}</h2><img src='{html.escape(name)}'>")
    if len([*spec.grid, *spec.random]) >= 1 and best:
        figures.parallel_coordinates(spec, best, out / "parallel.png")
        parts.append("<h2>Parallel coordinates</h2><img src='parallel.png'>")
    for label, chosen in (("best", best[:3]), ("worst", best[-3:][::-1] if len(best) > 3 else [])):
        cells = []
        for row in chosen:
            picture = _final_picture(Path(row["run_folder"]))
            if picture is not None:
                name = f"{label}_{row['trial']}.png"
                write_atomic(out / name, picture)  # replaces whatever is there, a link included, never writes through it
                cells.append(f"<figure><img src='{name}'><figcaption>{html.escape(_describe(spec, row))}</figcaption></figure>")
        if cells:
            parts.append(f"<h2>{label.title()} trials</h2><div class='pictures'>" + "".join(cells) + "</div>")
    try:
        video = bool(best) and figures.grid_video(best[:4], out / "best.mp4")
    except Exception as e:  # a damaged frame of one trial's folder (any of PIL's errors) costs the video, not the report
        video = False
        parts.append(f"<p>No video of the best runs: {html.escape(str(e).splitlines()[0] if str(e) else type(e).__name__)}</p>")
    if video:
        parts.append("<h2>Best runs as they trained</h2><video src='best.mp4' controls loop muted></video>")
    parts.append("<h2>All trials</h2>" + _html_table(table))
    page = ("<!doctype html><meta charset='utf-8'><title>Sweep " + html.escape(spec.name) + "</title>"
            "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}img,video{max-width:100%}"
            # Three pictures to a row, each shrunk to its share of the page; wide tables scroll on their own.
            ".pictures{display:flex;gap:1em;flex-wrap:wrap}figure{flex:0 1 calc((100% - 2em) / 3);margin:0;min-width:0}"
            "figure img{width:100%;height:auto}figcaption{font-size:12px;overflow-wrap:anywhere}"
            ".table{overflow-x:auto}table{border-collapse:collapse;font-size:12px}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style>" + "\n".join(parts))
    write_atomic(out / "index.html", page)
    write_atomic(sweep_dir / "report.md", _markdown(spec, table, best))
    return out / "index.html"


def _final_picture(folder: Path) -> bytes | None:
    """The trial's final.png, read as untrusted input (a regular file, no link, at most a picture's limit); None if not."""
    from ..safefiles import read_plain

    try:
        return read_plain(folder, "final.png", kind="picture")
    except OSError:
        return None


def _describe(spec: SweepSpec, row: dict[str, Any]) -> str:
    fields = ", ".join(f"{k}={_fmt(row[k])}" for k in [*spec.grid, *spec.random, "seed"] if k in row)
    _, test = held_out_keys(spec)
    held = f", held out {test} {_fmt(row['final_' + test])}" if test != spec.metric and "final_" + test in row else ""
    return f"{row['trial']}: {spec.metric} {_fmt(row['final_' + spec.metric])}{held} ({fields})"


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _html_table(table: list[dict[str, Any]]) -> str:
    if not table:
        return "<p>No trials.</p>"
    header = [k for k in table[0] if k != "run_folder"]
    head = "".join(f"<th>{html.escape(k)}</th>" for k in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r.get(k, '')))}</td>" for k in header) + "</tr>" for r in table)
    return f"<div class='table'><table><tr>{head}</tr>{body}</table></div>"


def _markdown(spec: SweepSpec, table: list[dict[str, Any]], best: list[dict[str, Any]]) -> str:
    stops = {s: sum(r["stop"] == s for r in table) for s in ("done", "asha-stopped", "error")}
    lines = [f"# Sweep {spec.name}", "",
             f"{len(table)} trials ({stops['done']} done, {stops['asha-stopped']} stopped early, {stops['error']} failed); "
             f"metric `{spec.metric}` ({spec.mode}).", ""]
    for field in [*spec.grid]:
        lines.append(f"## {spec.metric} by {field}")
        lines.append("")
        lines.append("| value | mean | spread (sd) | trials |")
        lines.append("|---|---|---|---|")
        for value, finals in _by_value(spec, table, field):
            sd = statistics.stdev(finals) if len(finals) > 1 else 0.0
            lines.append(f"| {value} | {statistics.fmean(finals):.4g} | {sd:.2g} | {len(finals)} |")
        lines.append("")
    # The training and held-out headlines beside the metric, where the trials hold pixels out.
    extra = [k for k in held_out_keys(spec) if k != spec.metric and any("final_" + k in r for r in best[:5])]
    lines += ["## Best trials", "", "| trial | " + " | ".join([spec.metric, *extra]) + " | stop | run folder |",
              "|---|" + "---|" * (len(extra) + 1) + "---|---|"]
    lines += [f"| {r['trial']} | " + " | ".join(_fmt(r.get("final_" + k, "")) for k in [spec.metric, *extra])
              + f" | {r['stop']} | {r['run_folder']} |" for r in best[:5]]
    return "\n".join(lines) + "\n"


def _by_value(spec: SweepSpec, table: list[dict[str, Any]], field: str) -> list[tuple[str, list[float]]]:
    """The final metrics of the trials at each value of a grid field, in the grid's order."""
    key = "final_" + spec.metric
    out = []
    for value in spec.grid.get(field, ()):
        finals = [r[key] for r in table if str(r.get(field)) == value and isinstance(r[key], (int, float))]
        if finals:
            out.append((value, finals))
    return out
