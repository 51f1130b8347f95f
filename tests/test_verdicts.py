"""Tests for overfit.reproduce.verdicts: the Wilson interval, the declared verdict rules and the bootstrap of an effect."""

from __future__ import annotations

import numpy as np
import pytest

from overfit.reproduce import verdicts as vd
from overfit.reproduce.verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, SOMETIMES

# Newcombe (1998), "Two-sided confidence intervals for the single proportion", Stat. Med. 17: 857-872,
# Table II, method 3 (score interval without continuity correction).
NEWCOMBE = [((81, 263), (0.2553, 0.3662)), ((15, 148), (0.0624, 0.1605)), ((0, 20), (0.0, 0.1611)), ((1, 29), (0.0061, 0.1718))]


@pytest.mark.parametrize(("kn", "expected"), NEWCOMBE)
def test_wilson_matches_published_values(kn, expected):
    low, high = vd.wilson(*kn)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_unanimous_closed_form_and_scipy():
    # By hand: at n of n the lower bound is n / (n + z²), at 0 of n the upper bound is z² / (n + z²).
    z2 = vd.Z ** 2
    for n in (1, 2, 8, 10, 20):
        assert vd.wilson(n, n) == (pytest.approx(n / (n + z2)), 1.0)
        assert vd.wilson(0, n) == (0.0, pytest.approx(z2 / (n + z2)))
    assert vd.wilson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        vd.wilson(3, 2)
    stats = pytest.importorskip("scipy.stats")
    for n in (2, 5, 10, 20):
        for k in range(n + 1):
            ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
            assert vd.wilson(k, n) == (pytest.approx(ci.low, abs=1e-9), pytest.approx(ci.high, abs=1e-9))


@pytest.mark.parametrize(
    ("holds", "of", "verdict"),
    [
        (20, 20, HOLDS), (18, 20, HOLDS), (17, 20, SOMETIMES), (10, 20, SOMETIMES), (3, 20, SOMETIMES),
        (2, 20, DOES_NOT_HOLD), (0, 20, DOES_NOT_HOLD),
        (8, 8, HOLDS), (7, 7, INCONCLUSIVE), (0, 8, DOES_NOT_HOLD), (0, 7, INCONCLUSIVE),  # unanimous: 8 seeds decide
        (10, 10, HOLDS), (9, 10, SOMETIMES), (7, 10, SOMETIMES),
        (2, 2, INCONCLUSIVE), (0, 2, INCONCLUSIVE), (1, 2, SOMETIMES),  # the old default of two seeds
        (0, 0, INCONCLUSIVE),
    ],
)
def test_rule_gives_the_declared_verdicts(holds, of, verdict):
    assert vd.rule(holds, of)[0] == verdict
    tally = vd.count([True] * holds + [False] * (of - holds))
    assert tally.verdict == verdict and tally.decided == of


def test_undecided_seeds_leave_a_verdict_only_if_they_cannot_change_it():
    # 18 hold, 2 undecided: 20 of 20 and 18 of 20 are both HOLDS.
    assert vd.count([True] * 18 + [None] * 2).verdict == HOLDS
    # 17 hold, 3 undecided: 20 of 20 would hold, 17 of 20 would only sometimes.
    tally = vd.count([True] * 17 + [None] * 3)
    assert (tally.holds, tally.decided, tally.undecided) == (17, 17, 3)
    assert tally.verdict == INCONCLUSIVE and "HOLDS or SOMETIMES" in tally.judged[1]
    assert vd.count([None] * 5).verdict == INCONCLUSIVE
    assert vd.count([False] * 18 + [None] * 2).verdict == DOES_NOT_HOLD


def test_tally_numbers_and_sentence():
    tally = vd.count([True] * 7 + [False] * 3)
    assert tally.share == 0.7
    low, high = tally.interval
    assert (round(low, 3), round(high, 3)) == (0.397, 0.892)
    assert tally.sentence() == ("Holds in 7 of 10 seeds (70 %, 95 % CI 40-89 %): SOMETIMES; they disagree, "
                                "and the interval is neither above 67 % nor below 33 %; at this share 745 deciding seeds would make it HOLDS.")
    assert vd.count([True] * 10).sentence().startswith("Holds in 10 of 10 seeds (100 %, 95 % CI 72-100 %): HOLDS")
    assert vd.count([False] * 10).sentence().startswith("Holds in 0 of 10 seeds (0 %, 95 % CI 0-28 %): DOES NOT HOLD")
    short = vd.count([True, None], "runs").sentence("short of the budget")
    assert short.startswith("Holds in 1 of 1 run (100 %") and "1 more run cannot decide it (short of the budget): INCONCLUSIVE" in short
    assert vd.count([None, None]).sentence("short") == "No seed decides it: 2 seeds cannot (short): INCONCLUSIVE."
    d = tally.to_dict()
    assert d["holds"] == 7 and d["of"] == 10 and d["verdict"] == SOMETIMES and d["bounds"] == [vd.FAILS_UPPER, vd.HOLDS_LOWER]


def test_bootstrap_median_is_deterministic_and_contains_the_median():
    ratios = [0.42, 0.55, 0.38, 0.61, 0.47, 0.50, 0.44, 0.71, 0.39, 0.52]
    median, low, high = vd.bootstrap_median(ratios)
    assert median == pytest.approx(float(np.median(ratios)))
    assert min(ratios) <= low <= median <= high <= max(ratios) and low < high
    assert vd.bootstrap_median(ratios) == (median, low, high)  # fixed resampling seed: the same report every time
    assert vd.bootstrap_median(list(reversed(ratios)))[0] == median
    assert vd.bootstrap_median([0.5] * 4) == (0.5, 0.5, 0.5)
    assert vd.bootstrap_median([0.5]) == (0.5, None, None)  # one seed: no interval
    assert vd.bootstrap_median([]) == (None, None, None)


def test_bootstrap_matches_a_plain_loop():
    ratios = [0.3, 0.9, 0.5, 0.6]
    rng = np.random.default_rng(vd.BOOTSTRAP_SEED)
    draws = rng.integers(0, len(ratios), size=(vd.BOOTSTRAP_RESAMPLES, len(ratios)))
    medians = sorted(float(np.median([ratios[i] for i in row])) for row in draws)
    _, low, high = vd.bootstrap_median(ratios)
    assert (low, high) == (pytest.approx(np.percentile(medians, 2.5)), pytest.approx(np.percentile(medians, 97.5)))


def test_rules_name_the_thresholds():
    text = " ".join(vd.rules())
    assert "67 %" in text and "33 %" in text and "Wilson" in text and "2,000 resamples" in text
    for verdict in vd.VERDICTS:
        assert f"{verdict}:" in text


@pytest.mark.parametrize("holds, of, expected", [
    (2, 2, (8, "HOLDS")),            # unanimous: 8 of 8 is the fewest whose lower bound reaches 2/3 (7 of 7: 65 %)
    (0, 3, (8, "DOES NOT HOLD")),
    (9, 10, (13, "HOLDS")),          # 90 %: 12 of 13 (Wilson 67 %); 11 of 12 only 65 %
    (5, 10, None),                   # 50 % lies between the bounds: more seeds never leave SOMETIMES
    (0, 0, None),
])
def test_seeds_to_decide_is_the_fewest_seeds_at_the_same_share_that_reach_a_bound(holds, of, expected):
    assert vd.seeds_to_decide(holds, of) == expected
    if expected is not None:
        m, verdict = expected
        share = holds / of
        low, high = vd.wilson(round(share * m), m)
        assert (low >= 2 / 3) if verdict == "HOLDS" else (high <= 1 / 3)
        low, high = vd.wilson(round(share * (m - 1)), m - 1)  # one seed fewer does not reach it
        assert (low < 2 / 3) if verdict == "HOLDS" else (high > 1 / 3)


def test_the_sentence_says_how_many_seeds_would_decide_an_open_verdict():
    assert vd.count([True, True]).sentence().endswith("; at this share 8 deciding seeds would make it HOLDS.")
    assert vd.count([True, False]).sentence().endswith("; at this share no number of seeds makes it HOLDS or DOES NOT HOLD.")
    assert "would make it" not in vd.count([True] * 8).sentence()  # decided already
    assert vd.count([True] * 9 + [False]).to_dict()["to_decide"] == [13, "HOLDS"]
