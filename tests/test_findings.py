"""Tests for the verdict logic on synthetic curves: one that passes, one that fails, one that never converges."""

from __future__ import annotations

import pytest

from overfit.reproduce import findings as fd
from overfit.reproduce.findings import FAIL, INCONCLUSIVE, PASS, Curve

STEPS = list(range(0, 20001, 500))
MAJORITY = 0.8


def rising(to_90_at: int, final: float = 0.97, start: float = 0.6) -> Curve:
    """A curve that crosses 0.90 exactly at `to_90_at` and ends at `final`."""
    acc = []
    for s in STEPS:
        if s < to_90_at:
            acc.append(start + (0.899 - start) * s / to_90_at)
        else:
            acc.append(0.9 + (final - 0.9) * (s - to_90_at) / max(STEPS[-1] - to_90_at, 1))
    return Curve(STEPS, acc, [0.8] * len(STEPS))


def flat(level: float = 0.8, pred_bg: list[float] | None = None) -> Curve:
    return Curve(STEPS, [level] * len(STEPS), pred_bg or [0.8] * len(STEPS))


def test_converged_threshold():
    assert fd.converged_threshold(0.8) == 0.9
    assert fd.converged_threshold(0.5) == 0.9
    assert fd.converged_threshold(0.96) == pytest.approx(0.98)


def test_steps_to_and_mean():
    c = rising(6000)
    assert fd.steps_to(c, 0.9) == 6000
    assert fd.steps_to(flat(), 0.9) is None
    assert fd.mean_steps_to([rising(6000), rising(8000)], 0.9) == 7000
    assert fd.mean_steps_to([rising(6000), flat()], 0.9) is None


def test_converges_pass_fail_inconclusive():
    assert fd.finding_scaled_relu_converges([rising(6000), rising(9000)], MAJORITY).verdict == PASS
    # Never reaching the threshold fails only at the claim's own budget; short of it, it is undecided.
    assert fd.finding_scaled_relu_converges([flat(), flat(0.85)], MAJORITY).verdict == INCONCLUSIVE
    full = list(range(0, fd.ORIGINAL_STEPS + 1, 5000))
    assert fd.finding_scaled_relu_converges([Curve(full, [0.8] * len(full), [0.8] * len(full))], MAJORITY).verdict == FAIL
    assert fd.finding_tanh_converges([rising(6000), flat()], MAJORITY).verdict == INCONCLUSIVE
    f = fd.finding_scaled_relu_converges([rising(6000), rising(9000)], MAJORITY)
    assert f.numbers["mean_steps_to_threshold"] == 7500
    assert "7,500" in f.summary


def test_faster():
    assert fd.faster([rising(4000)], [rising(8000)], 0.9)[0] == PASS
    assert fd.faster([rising(7500)], [rising(8000)], 0.9)[0] == INCONCLUSIVE  # within 10 %
    assert fd.faster([rising(9000)], [rising(8000)], 0.9)[0] == FAIL
    assert fd.faster([rising(9000)], [flat()], 0.9)[0] == PASS  # the other never gets there
    assert fd.faster([flat()], [rising(9000)], 0.9)[0] == FAIL
    assert fd.faster([flat()], [flat()], 0.9)[0] == INCONCLUSIVE  # never converges: cannot tell
    verdict, a, b, ratio = fd.faster([rising(4000)], [rising(8000)], 0.9)
    assert (a, b, ratio) == (4000, 8000, 0.5)


def test_cos_and_batchnorm_findings():
    f = fd.finding_cos_scale([rising(3000)], [rising(12000)], MAJORITY)
    assert f.verdict == PASS and f.numbers["cos_3_steps_to_90%"] == 3000 and f.numbers["cos_1_steps_to_90%"] == 12000
    assert fd.finding_cos_scale([rising(12000)], [rising(3000)], MAJORITY).verdict == FAIL
    # BatchNorm must also converge in every seed.
    assert fd.finding_batchnorm([rising(2000)], [rising(8000)], MAJORITY).verdict == PASS
    assert fd.finding_batchnorm([rising(2000), flat()], [rising(8000)], MAJORITY).verdict == INCONCLUSIVE
    assert fd.finding_batchnorm([flat()], [rising(8000)], MAJORITY).verdict == FAIL


def test_raw_relu_fails_finding():
    flipping = flat(0.8, [1.0, 0.0] * 20 + [1.0])
    f = fd.finding_raw_relu_fails([flipping], [rising(6000)], MAJORITY)
    assert f.verdict == PASS
    assert f.numbers["flips"] == 40 and f.numbers["constant_ink_evals"] == 20 and f.numbers["constant_bg_evals"] == 21
    # A raw ReLU that converges contradicts the claim.
    assert fd.finding_raw_relu_fails([rising(6000)], [rising(6000)], MAJORITY).verdict == FAIL
    # Learning a little, but not converging: neither near the majority rate nor converged.
    assert fd.finding_raw_relu_fails([flat(0.87)], [rising(6000)], MAJORITY).verdict == INCONCLUSIVE


def test_constant_predictions():
    c = Curve([0, 1, 2, 3, 4], [0.8] * 5, [0.99, 0.5, 0.01, 0.01, 0.995])
    assert fd.constant_predictions(c) == (2, 2, 2)


def test_band_order():
    assert fd.band_order_holds([0, 500, 1000, None], 0) == PASS
    assert fd.band_order_holds([0, 1000, 500, None], 0) == FAIL
    assert fd.band_order_holds([0, 1000, 500, None], 500) == PASS  # within tolerance
    assert fd.band_order_holds([0, None, 500], 0) == FAIL  # a higher band learned, a lower never
    assert fd.band_order_holds([0, None, None], 0) == INCONCLUSIVE
    f = fd.finding_spectral_bias({"a": [0, 500, 1000], "b": [0, 1000, None]}, eval_every=500)
    assert f.verdict == PASS
    f = fd.finding_spectral_bias({"a": [2000, 500, 0], "b": [2000, 0, 1000], "c": [0, 500, 1000]}, eval_every=100)
    assert f.verdict == FAIL
    assert fd.finding_spectral_bias({"a": [None, None]}, eval_every=100).verdict == INCONCLUSIVE


def test_judge_all_orders_findings():
    curves = {"relu_raw": [flat()], "relu_1": [rising(8000)], "tanh_1": [rising(9000)], "cos_1": [rising(15000)],
              "cos_3": [rising(4000)], "bn_relu": [rising(3000)]}
    out = fd.judge_all(curves, MAJORITY, {"relu_1-s0": [0, 500, 1000]}, 500)
    assert [f.id for f in out] == [1, 2, 3, 4, 5, 6]
    assert [f.verdict for f in out] == [PASS] * 6
    assert all(isinstance(f.to_dict()["summary"], str) for f in out)


def test_a_shortened_budget_leaves_convergence_inconclusive_never_fail():
    from overfit.reproduce.findings import INCONCLUSIVE, FAIL, finding_tanh_converges

    steps = list(range(0, 20_001, 1000))
    rising = Curve(steps, [0.5 + 0.015 * i for i in range(len(steps))], [0.5] * len(steps))  # 0.5 -> 0.8, still climbing
    flat = Curve(steps, [0.5 + min(i, 5) * 0.05 for i in range(len(steps))], [0.5] * len(steps))  # 0.75 from step 5,000 on
    assert finding_tanh_converges([rising], 0.6).verdict == INCONCLUSIVE
    assert "still rose" in finding_tanh_converges([rising], 0.6).summary
    flat_finding = finding_tanh_converges([flat], 0.6)
    assert flat_finding.verdict == INCONCLUSIVE and "flat" in flat_finding.summary
    # At the claim's own budget a run below the threshold fails, improving or not.
    long_steps = list(range(0, 100_001, 5000))
    long_rising = Curve(long_steps, [0.5 + 0.015 * i for i in range(len(long_steps))], [0.5] * len(long_steps))
    assert finding_tanh_converges([long_rising], 0.6).verdict == FAIL
