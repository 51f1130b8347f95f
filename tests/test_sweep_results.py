"""A sweep's results table and report, read from its trials' run folders (no Ray: the folders are made by `overfit train`)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from helpers import tiny_args

from overfit.cli import main
from overfit.config import RunConfig
from overfit.sweep import results
from overfit.sweep.spec import build

SMALL = tiny_args({"data.text": "HI", "model.hidden": "16", "optim.batch_size": 128, "schedule.eval_batch_size": 256,
                   "schedule.steps": 20, "schedule.eval_every": 10, "seed": 3})


def test_rows_and_report_put_the_held_out_headline_beside_the_metric(tmp_path):
    folders = []
    for trial, holdout in (("t0", "checkerboard"), ("t1", "0.25")):
        # Where a sweep keeps its trials: runs/trial-ID in the sweep folder (the only folders its results read).
        out = CliRunner().invoke(main, ["train", *SMALL, "--holdout", holdout, "--runs-dir", str(tmp_path / "runs"),
                                        "--name", f"trial-{trial}"])
        assert out.exit_code == 0, out.output
        folders.append(tmp_path / "runs" / f"trial-{trial}")
    base = RunConfig().with_overrides({"data.holdout": "checkerboard"}).to_dict()
    spec = build("held", base, grid={"data.holdout": "checkerboard,0.25"})
    records = [{"trial_id": t, "params": {"data.holdout": h}, "last": {}, "error": None, "wall_s": 1.0, "run_folder": str(f)}
               for t, h, f in (("t0", "checkerboard", folders[0]), ("t1", "0.25", folders[1]))]
    table = results.rows(spec, tmp_path, records)
    for row, folder in zip(table, folders):
        last = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()][-1]
        assert row["final_dense_acc"] == last["dense_acc"]
        assert (row["final_fit_acc"], row["final_test_acc"]) == (last["fit_acc"], last["test_acc"])
    results.write_report(spec, tmp_path, table)
    md = (tmp_path / "report.md").read_text()
    assert "| trial | dense_acc | fit_acc | test_acc | stop | run folder |" in md
    best = results.ranked(spec, table)[0]
    assert f"| {best['trial']} | {best['final_dense_acc']:.4g} | {best['final_fit_acc']:.4g} | {best['final_test_acc']:.4g} |" in md


def test_rows_of_runs_without_held_out_pixels_have_no_held_out_columns(tmp_path):
    out = CliRunner().invoke(main, ["train", *SMALL, "--runs-dir", str(tmp_path / "t0")])
    assert out.exit_code == 0, out.output
    folder = next((tmp_path / "t0").iterdir())
    spec = build("plain", RunConfig().to_dict())
    table = results.rows(spec, tmp_path, [{"trial_id": "t0", "params": {}, "last": {}, "error": None, "wall_s": 1.0,
                                           "run_folder": str(folder)}])
    assert "final_dense_acc" in table[0] and not any(k.startswith(("final_fit_", "final_test_")) for k in table[0])
    results.write_report(spec, tmp_path, table)
    assert "| trial | dense_acc | stop | run folder |" in Path(tmp_path / "report.md").read_text()
