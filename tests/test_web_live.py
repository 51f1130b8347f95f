"""Tests of what a training run shows live (`web.live`): curves thinned as they grow."""

from __future__ import annotations

import math

from overfit.modes import MODES
from overfit.web import live


def test_a_curve_stays_under_its_limit_evenly_thinned_and_skips_non_finite_values(monkeypatch):
    monkeypatch.setattr(live, "MAX_CURVE_POINTS", 100)
    curve = live.Curve()
    for step in range(1, 10_001):
        curve.add(step, math.nan if step == 5 else 1.0 / step)
    steps = [s for s, _ in curve.points]
    assert 50 <= len(steps) <= 100 and curve.stride == 128
    assert steps[0] == 1 and all(b - a == curve.stride for a, b in zip(steps[1:], steps[2:]))  # even spacing past the NaN
    assert all(v == 1.0 / s for s, v in curve.points)


def test_curves_of_a_run_on_disk_hold_every_metric_it_records():
    records = [{"step": 0, "dense_psnr": 10.0, "train_seconds": 0.1},
               {"step": 100, "train_loss": 0.5, "dense_psnr": 20.0, "dense_acc": 0.9, "layers": [], "dense_sharpness": 3.0}]
    curves = live.curves_from(records, MODES["gray"])
    # "loss", then each key the metric registry knows, by its key; not train_seconds, layers or unknown keys.
    assert sorted(curves) == ["dense_acc", "dense_psnr", "loss", "train_loss"]
    assert curves["loss"].points == [(100, 0.5)] and curves["dense_psnr"].points == [(0, 10.0), (100, 20.0)]
    assert curves["dense_acc"].points == [(100, 0.9)]
    assert "fit_psnr" not in curves  # no held-out pixels: no fit or test curves
    assert list(live.new_curves()) == ["loss"]


def test_held_out_records_give_fit_and_test_curves():
    records = [{"step": 0, "dense_acc": 0.5, "fit_acc": 0.52, "test_acc": 0.48, "fit_psnr": 99.0},
               {"step": 100, "train_loss": 0.4, "dense_acc": 0.8, "fit_acc": 0.9, "test_acc": 0.7},
               {"step": 200, "dense_acc": 0.85, "fit_acc": 0.95, "test_acc": math.nan}]  # a non-finite value is no point
    curves = live.curves_from(records, MODES["binary"])
    assert curves["dense_acc"].points == [(0, 0.5), (100, 0.8), (200, 0.85)]
    assert curves["fit_acc"].points == [(0, 0.52), (100, 0.9), (200, 0.95)]
    assert curves["test_acc"].points == [(0, 0.48), (100, 0.7)]
    assert curves["fit_psnr"].points == [(0, 99.0)]


def test_fit_and_test_curves_are_thinned_exactly_as_the_dense_curve(monkeypatch):
    monkeypatch.setattr(live, "MAX_CURVE_POINTS", 50)
    records = [{"step": 10 * i, "dense_psnr": 1.0 + i, "fit_psnr": 2.0 + i, "test_psnr": 3.0 + i} for i in range(1000)]
    curves = live.curves_from(records, MODES["rgb"])
    steps = [s for s, _ in curves["dense_psnr"].points]
    assert curves["dense_psnr"].stride == curves["fit_psnr"].stride == curves["test_psnr"].stride == 32
    assert [s for s, _ in curves["fit_psnr"].points] == [s for s, _ in curves["test_psnr"].points] == steps
    assert all(v == 2.0 + s / 10 for s, v in curves["fit_psnr"].points) and all(v == 3.0 + s / 10 for s, v in curves["test_psnr"].points)
