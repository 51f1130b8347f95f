"""The reproduction report: one folder that shows what `overfit reproduce` measured.

`write_report` renders results the caller has already computed (nothing is measured here):

    report/
      index.html          the report; opens from disk (inline CSS, relative links, no network)
      report.md           the same content in Markdown, images linked
      grid.mp4 / .gif     seed 0 of all six presets training side by side, one shared step counter
      accuracy.png/.svg   dense accuracy vs step: mean over seeds, min-max band, majority line
      loss.png/.svg       dense loss vs step, log scale, same style
      spectrum.png/.svg   error per spatial-frequency band vs step, one heatmap per preset

A reproduction with several variants gets one more report, `write_variants_report`, beside their own:

    report/
      index.html, report.md   the findings x variants table (verdict, share, interval), each finding's sentence
                              per variant, links to each variant's report
      accuracy / loss         the curves, a panel per variant

One module per output: figures.py (the curves and spectrum figures), gridvideo.py (the grid
video), htmlpage.py with report.css (index.html), markdown.py (report.md); formatting.py
holds the numbers, words and preset colours they share.

Conventions:
- Every file is written atomically (`files.write_atomic`, or video.py's writers), and
  index.html last, so a folder with an index.html is a complete report.
- Every preset has the same colour everywhere: curves, heatmap titles, video labels, tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..files import write_atomic
from .figures import curves_figure, inside_figure, spectrum_figure, variant_curves_figure
from .formatting import format_steps
from .gridvideo import DIVERGED_RGB, GIF_MAX_WIDTH, GRID_FPS, GRID_MAX_WIDTH, grid_frames, panel_size, write_grid_video
from .htmlpage import html_page, variants_html_page
from .markdown import markdown_page, variants_markdown_page

__all__ = [
    "DIVERGED_RGB",
    "GIF_MAX_WIDTH",
    "GRID_FPS",
    "GRID_MAX_WIDTH",
    "format_steps",
    "grid_frames",
    "panel_size",
    "write_report",
    "write_variants_report",
]


def write_network_views(report_dir: Path, results: dict) -> None:
    """net-<preset>-<step>.png: the network view of each preset's seed-0 run at its chosen steps (see reproduce.units)."""
    from ..errors import OverfitError
    from ..images import save_png
    from ..netview import network_view

    for preset, data in (results.get("inside") or {}).items():
        shown = []
        for step in data.get("view_steps", []):
            try:
                view = network_view(report_dir.parent / data["run_dir"], step)
            except OverfitError:  # weights not kept (a large model) or removed: the report goes on without the view
                continue
            save_png(view.picture(tile_width=32), report_dir / f"net-{preset}-{step}.png")
            shown.append(step)
        data["view_steps"] = shown


def write_report(report_dir: Path, results: dict, frames: dict[str, list[tuple[int, np.ndarray]]], target_gray: np.ndarray) -> None:
    """Write the reproduction report (see the module docstring for the files) into `report_dir`.

    `results`: the JSON-able dict of `overfit reproduce` (meta, presets with runs and
    histories, table, spectrum, findings, variants). `frames[preset]`: (step, (H, W) uint8)
    predictions of seed 0 in step order. `target_gray`: (H, W) uint8 target picture.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)

    curves_figure(results, "dense_acc", report_dir / "accuracy")
    curves_figure(results, "dense_loss", report_dir / "loss")
    spectrum_figure(results, report_dir / "spectrum")
    inside_figure(results, report_dir / "inside")
    write_network_views(report_dir, results)
    write_grid_video(report_dir, results, frames, target_gray)

    write_atomic(report_dir / "report.md", markdown_page(results))
    # Last: a folder with an index.html holds a complete report.
    write_atomic(report_dir / "index.html", html_page(results))


def write_variants_report(report_dir: Path, results: dict, variant_results: list[dict]) -> None:
    """Write the report that compares a reproduction's variants into `report_dir` (see the module docstring).

    `results`: the comparison's JSON-able dict (`reproduce.compare_variants`: meta, rules, variants with their
    findings and tables). `variant_results[i]`: variant i's own results (with the runs' histories), for the curves.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    named = [(v.get("name", ""), r) for v, r in zip(results.get("variants") or [], variant_results)]
    variant_curves_figure(named, "dense_acc", report_dir / "accuracy")
    variant_curves_figure(named, "dense_loss", report_dir / "loss")
    write_atomic(report_dir / "report.md", variants_markdown_page(results))
    # Last: a folder with an index.html holds a complete report.
    write_atomic(report_dir / "index.html", variants_html_page(results))
