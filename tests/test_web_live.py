"""Tests of what a training run shows live (`web.live`): curves thinned as they grow."""

from __future__ import annotations

import math

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
    loss, metric = live.curves_from(records, "dense_psnr")
    assert loss.points == [(100, 0.5)] and metric.points == [(0, 10.0), (100, 20.0)]
