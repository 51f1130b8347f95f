"""Tests for the findings on synthetic curves: per seed (holds, does not, cannot decide), then over the seeds."""

from __future__ import annotations

import pytest

from overfit.reproduce import findings as fd
from overfit.reproduce.findings import Curve
from overfit.reproduce.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, SOMETIMES, VERDICTS

SHORT = list(range(0, 20001, 500))  # short of the original's budget
FULL = list(range(0, fd.ORIGINAL_STEPS + 1, 500))  # the budget the claims were made for
MAJORITY = 0.8


def rising(to_90_at: int, seed: int | None = None, steps: list[int] = FULL, final: float = 0.97, start: float = 0.6) -> Curve:
    """A curve that crosses 0.90 exactly at `to_90_at` and ends at `final`."""
    acc = []
    for s in steps:
        if s < to_90_at:
            acc.append(start + (0.899 - start) * s / to_90_at)
        else:
            acc.append(0.9 + (final - 0.9) * (s - to_90_at) / max(steps[-1] - to_90_at, 1))
    return Curve(steps, acc, [0.8] * len(steps), seed=seed)


def flat(level: float = 0.8, seed: int | None = None, steps: list[int] = FULL, pred_bg: list[float] | None = None) -> Curve:
    return Curve(steps, [level] * len(steps), pred_bg or [0.8] * len(steps), seed=seed)


def test_converged_threshold():
    assert fd.converged_threshold(0.8) == 0.9
    assert fd.converged_threshold(0.5) == 0.9
    assert fd.converged_threshold(0.96) == pytest.approx(0.98)


def test_steps_to_and_median():
    assert fd.steps_to(rising(6000, steps=SHORT), 0.9) == 6000
    assert fd.steps_to(flat(), 0.9) is None
    assert fd.median_steps_to([rising(5000), rising(7500), flat()], 0.9) == 6250  # over the seeds that reached it
    assert fd.median_steps_to([rising(5000), rising(7500), rising(10000)], 0.9) == 7500
    assert fd.median_steps_to([flat()], 0.9) is None


def test_a_seed_converges_undecided_short_of_the_budget():
    assert fd.seed_converges(rising(6000, steps=SHORT), 0.9)[0] is True
    assert fd.seed_converges(flat(), 0.9)[0] is False  # the whole budget without getting there
    holds, note = fd.seed_converges(flat(steps=SHORT), 0.9)
    assert holds is None and "short of the original's 100,000" in note
    diverged = Curve(SHORT[:5], [0.7] * 5, [0.8] * 5, diverged_step=2000)
    assert fd.seed_converges(diverged, 0.9) == (False, "diverged at step 2,000 (best accuracy 0.700)")


def test_convergence_verdicts_from_known_shares():
    ten = range(10)
    f = fd.finding_scaled_relu_converges([rising(6000 + 500 * s, s) for s in ten], MAJORITY)
    assert f.verdict == HOLDS and (f.tally.holds, f.tally.decided) == (10, 10)
    assert f.sentence.startswith("Holds in 10 of 10 seeds (100 %, 95 % CI 72-100 %): HOLDS")
    assert f.numbers["median_steps_to_threshold"] == 8250
    assert fd.finding_scaled_relu_converges([flat(seed=s) for s in ten], MAJORITY).verdict == DOES_NOT_HOLD  # 0 of 10
    mixed = fd.finding_tanh_converges([rising(9000, s) if s < 7 else flat(seed=s) for s in ten], MAJORITY)
    assert mixed.verdict == SOMETIMES and mixed.tally.share == 0.7
    assert [r["holds"] for r in mixed.per_seed] == [True] * 7 + [False] * 3 and [r["seed"] for r in mixed.per_seed] == list(ten)
    # Two seeds that agree are too few either way.
    assert fd.finding_scaled_relu_converges([rising(6000, 0), rising(9000, 1)], MAJORITY).verdict == INCONCLUSIVE


def test_a_shortened_budget_leaves_convergence_inconclusive_never_a_failure():
    # 2 seeds converged, 8 short of the budget and not yet: all 8 could still go either way.
    f = fd.finding_tanh_converges([rising(6000, s, SHORT) if s < 2 else flat(0.85, s, SHORT) for s in range(10)], MAJORITY)
    assert f.verdict == INCONCLUSIVE and f.tally.undecided == 8
    assert "8 more seeds cannot decide it (8 runs short of the original's 100,000 steps" in f.sentence
    assert "--steps 100000" in f.summary
    steps = list(range(0, 20_001, 1000))
    climbing = Curve(steps, [0.5 + 0.015 * i for i in range(len(steps))], [0.5] * len(steps))  # 0.5 -> 0.8, still climbing
    level = Curve(steps, [0.5 + min(i, 5) * 0.05 for i in range(len(steps))], [0.5] * len(steps))  # 0.75 from step 5,000 on
    assert fd.finding_tanh_converges([climbing], 0.6).verdict == INCONCLUSIVE
    assert "still rose" in fd.finding_tanh_converges([climbing], 0.6).summary
    flat_finding = fd.finding_tanh_converges([level], 0.6)
    assert flat_finding.verdict == INCONCLUSIVE and "flat" in flat_finding.summary and flat_finding.sentence.startswith("No seed decides it")
    # At the claim's own budget, runs below the threshold do not converge, improving or not.
    long_steps = list(range(0, 100_001, 5000))
    long_rising = [Curve(long_steps, [0.5 + 0.015 * i for i in range(len(long_steps))], [0.5] * len(long_steps), seed=s) for s in range(8)]
    assert fd.finding_tanh_converges(long_rising, 0.6).verdict == DOES_NOT_HOLD


def test_seed_faster():
    assert fd.seed_faster(rising(4000), rising(8000), 0.9) == (True, 4000, 8000, 0.5)
    assert fd.seed_faster(rising(7500), rising(8000), 0.9)[0] is False  # within 10 %: not faster
    assert fd.seed_faster(rising(9000), rising(8000), 0.9)[0] is False
    assert fd.seed_faster(rising(9000), flat(), 0.9)[0] is True  # the other never gets there
    assert fd.seed_faster(flat(), rising(9000), 0.9)[0] is False
    assert fd.seed_faster(flat(), flat(), 0.9)[0] is None  # neither gets there: undefined
    assert fd.seed_faster(flat(), flat(), 0.9, must_converge=True)[0] is False  # ... unless the faster one must converge
    assert fd.seed_faster(flat(steps=SHORT), flat(steps=SHORT), 0.9, must_converge=True)[0] is None  # short of the budget


def test_speed_finding_pairs_runs_by_seed_and_reports_the_effect():
    cos3 = [rising(3000 + 500 * s, s) for s in reversed(range(10))]  # the order of the list does not pair them
    cos1 = [rising(10000, s) for s in range(10)]
    f = fd.finding_cos_scale(cos3, cos1, MAJORITY)
    assert f.verdict == HOLDS and f.tally.holds == 10
    ratios = sorted((3000 + 500 * s) / 10000 for s in range(10))
    assert [r["steps_to"]["0.9"]["ratio"] for r in f.per_seed] == ratios
    effect = f.effects[0]
    assert effect["threshold"] == 0.9 and effect["seeds"] == 10
    assert effect["median_ratio"] == pytest.approx((ratios[4] + ratios[5]) / 2)
    low, high = effect["interval"]
    assert low <= effect["median_ratio"] <= high
    assert fd.finding_cos_scale(cos3, cos1, MAJORITY).effects == f.effects  # the same runs, the same report
    assert "cos_3 needs 0.53 times cos_1's" in effect["text"] and [e["threshold"] for e in f.effects] == [0.9, 0.95]
    assert f.numbers["cos_3_median_steps_to_90%"] == 5250 and f.numbers["cos_1_median_steps_to_90%"] == 10000
    # Reversed: cos_3 slower in every seed.
    assert fd.finding_cos_scale(cos1, cos3, MAJORITY).verdict == DOES_NOT_HOLD
    # Neither reaches 90 % in any seed: the comparison is undefined.
    never = fd.finding_cos_scale([flat(seed=s) for s in range(10)], [flat(seed=s) for s in range(10)], MAJORITY)
    assert never.verdict == INCONCLUSIVE and never.effects[0]["median_ratio"] is None and "neither run reached" in never.sentence


def test_batchnorm_must_converge_in_the_seed():
    assert fd.finding_batchnorm([rising(2000, s) for s in range(8)], [rising(8000, s) for s in range(8)], MAJORITY).verdict == HOLDS
    # bn_relu never converges at the full budget while relu_1 does not either: that seed does not hold.
    f = fd.finding_batchnorm([flat(seed=s) for s in range(8)], [flat(seed=s) for s in range(8)], MAJORITY)
    assert f.verdict == DOES_NOT_HOLD
    half = fd.finding_batchnorm([rising(2000, s) if s % 2 else flat(seed=s) for s in range(8)], [rising(8000, s) for s in range(8)], MAJORITY)
    assert half.verdict == SOMETIMES and half.tally.share == 0.5


def test_raw_relu_fails_per_seed():
    flipping = flat(0.8, pred_bg=[1.0, 0.0] * 20 + [1.0])
    holds, note = fd.seed_raw_relu_fails(flipping, rising(6000), MAJORITY)
    assert holds is True and "below relu_1" in note
    assert fd.seed_raw_relu_fails(rising(6000), rising(6000), MAJORITY)[0] is False  # a raw ReLU that converges
    assert fd.seed_raw_relu_fails(flat(0.87), rising(6000), MAJORITY)[0] is False  # learns clearly above the majority rate
    assert fd.seed_raw_relu_fails(flat(steps=SHORT), rising(6000, steps=SHORT), MAJORITY)[0] is None  # short of the budget
    assert fd.seed_raw_relu_fails(flat(), flat(), MAJORITY)[0] is None  # relu_1 fails too: no contrast

    f = fd.finding_raw_relu_fails([flat(0.8, s, pred_bg=[1.0, 0.0] * 20 + [1.0]) for s in range(10)], [rising(6000, s) for s in range(10)], MAJORITY)
    assert f.verdict == HOLDS
    assert f.numbers["flips"] == 400 and f.numbers["constant_ink_evals"] == 200 and f.numbers["constant_bg_evals"] == 210
    assert fd.finding_raw_relu_fails([rising(6000, s) for s in range(10)], [rising(6000, s) for s in range(10)], MAJORITY).verdict == DOES_NOT_HOLD
    short = fd.finding_raw_relu_fails([flat(seed=s, steps=SHORT) for s in range(4)], [rising(6000, s, SHORT) for s in range(4)], MAJORITY)
    assert short.verdict == INCONCLUSIVE and "4 runs short of the original's 100,000 steps" in short.sentence


def test_constant_predictions():
    c = Curve([0, 1, 2, 3, 4], [0.8] * 5, [0.99, 0.5, 0.01, 0.01, 0.995])
    assert fd.constant_predictions(c) == (2, 2, 2)


def test_band_order_per_run():
    assert fd.band_order_holds([0, 500, 1000, None], 0) is True
    assert fd.band_order_holds([0, 1000, 500, None], 0) is False
    assert fd.band_order_holds([0, 1000, 500, None], 500) is True  # within tolerance
    assert fd.band_order_holds([0, None, 500], 0) is False  # a higher band learned, a lower never
    assert fd.band_order_holds([0, None, None], 0) is None
    runs = {f"relu_1-s{s}": [0, 500, 1000] for s in range(9)}
    f = fd.finding_spectral_bias({**runs, "tanh_1-s0": [0, 500, None]}, eval_every=500)
    assert f.verdict == HOLDS and f.tally.unit == "runs" and f.sentence.startswith("Holds in 10 of 10 runs")
    assert [r["run"] for r in f.per_seed][:2] == ["relu_1-s0", "relu_1-s1"]
    broken = {f"cos_1-s{s}": [2000, 500, 0] for s in range(9)}
    assert fd.finding_spectral_bias(broken, eval_every=100).verdict == DOES_NOT_HOLD
    assert fd.finding_spectral_bias({"a": [None, None]}, eval_every=100).verdict == INCONCLUSIVE


def test_judge_all_orders_findings_and_serialises():
    seeds = range(8)
    curves = {"relu_raw": [flat(seed=s) for s in seeds], "relu_1": [rising(8000, s) for s in seeds],
              "tanh_1": [rising(9000, s) for s in seeds], "cos_1": [rising(15000, s) for s in seeds],
              "cos_3": [rising(4000, s) for s in seeds], "bn_relu": [rising(3000, s) for s in seeds]}
    out = fd.judge_all(curves, MAJORITY, {f"relu_1-s{s}": [0, 500, 1000] for s in seeds}, 500)
    assert [f.id for f in out] == [1, 2, 3, 4, 5, 6]
    assert [f.verdict for f in out] == [HOLDS] * 6
    d = out[3].to_dict()
    assert d["share"]["holds"] == 8 and d["share"]["of"] == 8 and d["sentence"] == out[3].sentence
    assert d["effects"][0]["median_ratio"] == pytest.approx(4000 / 15000) and d["per_seed"][0]["seed"] == 0
    assert all(f.verdict in VERDICTS for f in out)


def test_rules_list_the_thresholds():
    text = " ".join(fd.rules(MAJORITY))
    assert "90 %" in text and "100,000" in text and f"{fd.FASTER_RATIO:g}" in text and "Wilson" in text


def test_the_early_stop_note_counts_stopped_runs_or_names_the_bands_no_run_learned():
    from overfit.reproduce.analysis import early_stop_note

    def presets(*reasons):
        return {"p": {"runs": [{"ending": {"reason": r}} for r in reasons]}}

    assert early_stop_note(presets("stopped", "budget"), {"a": [1, 2]}, 2).startswith("1 of 2 runs stopped early")
    note = early_stop_note(presets("budget", "budget"), {"a": [100, None, None], "b": [100, 200, None]}, 3)
    assert note.endswith("no run learned band 3 (error below 0.5) within its budget")
    assert early_stop_note(presets("budget"), {"a": [100, 200]}, 2).startswith("no run stopped early: none reached")


def test_a_finding_whose_preset_has_no_evaluated_run_is_not_judged_and_says_why():
    # A preset whose every run failed before its first evaluation has no curve: its findings cannot be judged; the
    # others are judged as usual.
    seeds = range(8)
    curves = {"relu_raw": [flat(seed=s) for s in seeds], "relu_1": [rising(8000, s) for s in seeds],
              "cos_1": [rising(15000, s) for s in seeds], "cos_3": [rising(4000, s) for s in seeds]}
    out = fd.judge_all(curves, MAJORITY, {f"relu_1-s{s}": [0, 500, 1000] for s in seeds}, 500)
    assert [f.id for f in out] == [1, 2, 3, 4, 5, 6]
    assert [f.verdict for f in out] == [HOLDS, HOLDS, INCONCLUSIVE, HOLDS, INCONCLUSIVE, HOLDS]
    assert out[2].title == fd.TITLES[3] and out[2].summary == "Not judged: no run of tanh_1 has an evaluation."
    assert "no run of bn_relu has an evaluation" in out[4].sentence and out[4].to_dict()["share"]["of"] == 0
