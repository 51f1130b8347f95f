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


def test_curves_of_a_run_on_disk_follow_its_headline_metric():
    records = [{"step": 0, "dense_psnr": 10.0}, {"step": 100, "train_loss": 0.5, "dense_psnr": 20.0, "dense_acc": 0.9}]
    curves = live.curves_from(records, MODES["gray"])
    assert list(curves) == list(live.CURVES) == ["loss", "metric", "fit", "test"]
    assert curves["loss"].points == [(100, 0.5)] and curves["metric"].points == [(0, 10.0), (100, 20.0)]
    assert curves["fit"].points == curves["test"].points == []  # no held-out pixels: no fit or test points


def test_held_out_records_give_fit_and_test_curves_of_the_modes_headline():
    records = [{"step": 0, "dense_acc": 0.5, "fit_acc": 0.52, "test_acc": 0.48, "fit_psnr": 99.0},
               {"step": 100, "train_loss": 0.4, "dense_acc": 0.8, "fit_acc": 0.9, "test_acc": 0.7},
               {"step": 200, "dense_acc": 0.85, "fit_acc": 0.95, "test_acc": math.nan}]  # a non-finite value is no point
    curves = live.curves_from(records, MODES["binary"])
    assert curves["metric"].points == [(0, 0.5), (100, 0.8), (200, 0.85)]
    assert curves["fit"].points == [(0, 0.52), (100, 0.9), (200, 0.95)]
    assert curves["test"].points == [(0, 0.48), (100, 0.7)]
    # The gray headline reads the PSNR keys, not the accuracy ones.
    assert live.curves_from(records, MODES["gray"])["fit"].points == [(0, 99.0)]


def test_fit_and_test_curves_are_thinned_exactly_as_the_metric_curve(monkeypatch):
    monkeypatch.setattr(live, "MAX_CURVE_POINTS", 50)
    records = [{"step": 10 * i, "dense_psnr": 1.0 + i, "fit_psnr": 2.0 + i, "test_psnr": 3.0 + i} for i in range(1000)]
    curves = live.curves_from(records, MODES["rgb"])
    steps = [s for s, _ in curves["metric"].points]
    assert curves["metric"].stride == curves["fit"].stride == curves["test"].stride == 32
    assert [s for s, _ in curves["fit"].points] == [s for s, _ in curves["test"].points] == steps
    assert all(v == 2.0 + s / 10 for s, v in curves["fit"].points) and all(v == 3.0 + s / 10 for s, v in curves["test"].points)
