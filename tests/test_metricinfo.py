"""Tests for overfit.metricinfo: the metric registry every reader asks (sweep, reports, lab, progress bar)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from overfit import metricinfo
from overfit.metricinfo import METRICS, SCOPES


def test_parse_takes_any_record_key_apart_and_refuses_other_keys():
    assert metricinfo.parse("dense_acc") == ("", "dense_", METRICS["acc"])
    assert metricinfo.parse("test_psnr") == ("", "test_", METRICS["psnr"])
    assert metricinfo.parse("final_fit_iou") == ("final_", "fit_", METRICS["iou"])
    assert metricinfo.parse("dense_pred_bg").metric.name == "pred_bg"
    for key in ("step", "train_seconds", "dense_", "acc", "final_acc", "dense_accuracy", "layers"):
        assert metricinfo.parse(key) is None and not metricinfo.known(key)
    with pytest.raises(KeyError, match="'train_seconds' names no metric"):
        metricinfo.info("train_seconds")


def test_directions_come_from_the_registry_not_a_suffix():
    maximised = {k for k in ("dense_acc", "dense_iou", "test_psnr", "fit_ssim") if metricinfo.direction(k) == "max"}
    assert maximised == {"dense_acc", "dense_iou", "test_psnr", "fit_ssim"}
    assert metricinfo.direction("train_loss") == metricinfo.direction("test_loss") == "min"


def test_scoped_builds_the_same_metric_over_other_pixels():
    assert metricinfo.scoped("dense_acc", metricinfo.TEST) == "test_acc"
    assert metricinfo.scoped("dense_psnr", metricinfo.FIT) == "fit_psnr"
    assert metricinfo.scoped("best_dense_loss", "test_") == "best_test_loss"
    with pytest.raises(KeyError):
        metricinfo.scoped("step", "fit_")


def test_values_are_written_with_the_registrys_scale_digits_and_unit():
    assert metricinfo.format_value("dense_acc", 0.9731) == "97.3 %"
    assert metricinfo.format_value("test_psnr", 24.506) == "24.51 dB"
    assert metricinfo.format_value("dense_iou", 0.5) == "0.500"
    assert metricinfo.format_value("dense_loss", 0.012345) == "0.0123"
    for missing in (None, float("nan"), float("inf"), "x"):
        assert metricinfo.format_value("dense_acc", missing) == "-"
    assert metricinfo.label("dense_psnr") == "PSNR"
    assert metricinfo.label("test_acc") == "accuracy (the held-out pixels)"


def test_the_served_table_has_every_scope_of_every_metric():
    table = metricinfo.served()
    assert len(table) == len(SCOPES) * len(METRICS)
    acc = table["fit_acc"]
    assert (acc["key"], acc["scope"], acc["name"], acc["scale"], acc["digits"], acc["unit"], acc["bounds"], acc["direction"]) == (
        "fit_acc", "fit_", "acc", 100.0, 1, "%", [0.0, 1.0], "max")
    assert table["dense_psnr"]["bounds"] is None and table["dense_psnr"]["label"] == "PSNR"


def test_importing_the_registry_costs_no_torch_import():
    code = "import sys, overfit.metricinfo; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_a_sweep_reads_its_metrics_direction_from_the_registry(monkeypatch):
    from overfit.sweep.spec import SweepSpec

    assert SweepSpec("s", {}, metric="test_ssim").mode == "max"
    assert SweepSpec("s", {}, metric="batch_loss").mode == "min"
    # A metric added to the registry is a sweep metric with its direction at once.
    monkeypatch.setitem(METRICS, "sharpness", metricinfo.Metric("sharpness", "sharpness", "", "max", None, 2))
    assert SweepSpec("s", {}, metric="dense_sharpness").mode == "max"
