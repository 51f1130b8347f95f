"""Verdicts over seeds: the share of seeds in which a finding holds, its 95 % Wilson interval, the declared
rules that turn them into HOLDS / DOES NOT HOLD / SOMETIMES / INCONCLUSIVE, and the bootstrap interval of an
effect (the median ratio of two presets' steps).

    tally = count([True, True, False, None], "seeds")    # per seed: holds, does not, cannot decide
    tally.verdict, tally.interval, tally.sentence()       # 'SOMETIMES', (0.094, 0.906), 'Holds in 2 of 3 seeds ...'
    median, low, high = bootstrap_median(ratios)          # fixed resampling seed: the same report every time

Pure functions of per-seed outcomes, numpy only; `findings.py` decides what "holds in a seed" means for
each finding. The rules are the named constants below, declared before any result was seen and never
tuned to turn a verdict; the report prints them (`rules`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

HOLDS, DOES_NOT_HOLD, SOMETIMES, INCONCLUSIVE = "HOLDS", "DOES NOT HOLD", "SOMETIMES", "INCONCLUSIVE"
VERDICTS = (HOLDS, DOES_NOT_HOLD, SOMETIMES, INCONCLUSIVE)

# The intervals are 95 % intervals, the customary level; Z is the standard normal's 97.5th percentile.
CONFIDENCE = 0.95
Z = 1.959963984540054
# HOLDS: the Wilson interval's lower bound is at least 2/3, i.e. with 95 % confidence a fresh seed shows
# the finding at odds of at least 2 to 1. Stricter bars ask for more seeds than a reproduction trains:
# at 0.8, 16 unanimous seeds are the least that reach it and 19 of 20 do not; at 2/3, 8 unanimous seeds
# reach it, and so do 18 of 20.
HOLDS_LOWER = 2 / 3
# DOES NOT HOLD: the mirror image, an upper bound of at most 1/3 (0 of 8 seeds, or 2 of 20).
FAILS_UPPER = 1 / 3
# Between the bounds the seeds' agreement decides. SOMETIMES: at least one seed holds and one does not
# (the outcome depends on the seed) and the interval reaches neither bound. INCONCLUSIVE: every seed
# agrees but there are too few for the interval to reach a bound (2 of 2 seeds: 34-100 %).
# A seed that cannot decide a finding (its run is short of the budget the claim was made for, or a
# comparison neither run completed) is left out of the share; the verdict stands only if it is the same
# whether every such seed would hold or none would, and is INCONCLUSIVE otherwise.
# Effects: the median over seeds of a per-seed ratio, with a percentile bootstrap interval from
# resampling seeds, from a fixed seed so the same runs give the same report.
BOOTSTRAP_RESAMPLES = 2_000
BOOTSTRAP_SEED = 0


def wilson(k: int, n: int, z: float = Z) -> tuple[float, float]:
    """Wilson score interval of a proportion, k successes in n trials (Wilson 1927); (0, 1) for n = 0.

    (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), with p = k/n; unlike p ± z sqrt(p(1-p)/n)
    it stays inside [0, 1] and does not shrink to a point at 0 of n or n of n.
    """
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= k <= n:
        raise ValueError(f"{k} successes out of {n} trials")
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At k = 0 or k = n one bound is exactly 0 or 1; rounding would leave it a hair inside.
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def rule(k: int, n: int) -> tuple[str, str]:
    """The verdict for a finding that holds in k of n deciding seeds, and why (a clause for the sentence)."""
    if n == 0:
        return INCONCLUSIVE, "nothing decides it"
    low, high = wilson(k, n)
    if low >= HOLDS_LOWER:
        return HOLDS, f"the interval's lower bound is at least {_pct(HOLDS_LOWER)}"
    if high <= FAILS_UPPER:
        return DOES_NOT_HOLD, f"the interval's upper bound is at most {_pct(FAILS_UPPER)}"
    if 0 < k < n:
        return SOMETIMES, f"they disagree, and the interval is neither above {_pct(HOLDS_LOWER)} nor below {_pct(FAILS_UPPER)}"
    return INCONCLUSIVE, f"all agree, but too few for the interval to reach {_pct(HOLDS_LOWER if k else FAILS_UPPER)}"


MOST_SEEDS_SEARCHED = 10_000  # beyond this, "no number of seeds a reproduction could train" decides it


def seeds_to_decide(k: int, n: int) -> tuple[int, str] | None:
    """(seeds, verdict): the fewest deciding seeds at which a finding seen to hold in k of n would be decided,
    HOLDS or DOES NOT HOLD, if further seeds showed it at the same share k / n; None where that share lies
    between the bounds (more seeds only narrow the interval around it: SOMETIMES stays) or n is 0."""
    if n == 0:
        return None
    p = k / n
    for m in range(n, MOST_SEEDS_SEARCHED + 1):
        verdict = rule(round(p * m), m)[0]
        if verdict in (HOLDS, DOES_NOT_HOLD):
            return m, verdict
    return None


@dataclass(frozen=True)
class Tally:
    """How many units (seeds, or runs) a finding holds in, does not hold in, and cannot be decided in; the verdict."""

    holds: int
    fails: int
    undecided: int
    unit: str = "seeds"

    @property
    def decided(self) -> int:
        return self.holds + self.fails

    @property
    def share(self) -> float | None:
        return self.holds / self.decided if self.decided else None

    @property
    def interval(self) -> tuple[float, float] | None:
        return wilson(self.holds, self.decided) if self.decided else None

    @property
    def judged(self) -> tuple[str, str]:
        """(verdict, why): the rule on the deciding units, unless the undecided ones could change it."""
        if not self.decided:
            return INCONCLUSIVE, f"no {self._unit(1)} decides it"
        if self.undecided:
            all_hold = rule(self.holds + self.undecided, self.decided + self.undecided)[0]
            none_hold = rule(self.holds, self.decided + self.undecided)[0]
            if all_hold != none_hold:
                return INCONCLUSIVE, f"the undecided {self._unit(self.undecided)} could make it {all_hold} or {none_hold}"
        # Where both extremes agree, the deciding units alone give the same verdict (a failure added to
        # k of n only lowers both bounds, a success only raises them).
        return rule(self.holds, self.decided)

    @property
    def verdict(self) -> str:
        return self.judged[0]

    def sentence(self, undecided_why: str = "") -> str:
        """'Holds in 7 of 10 seeds (70 %, 95 % CI 40-89 %): SOMETIMES; it depends on the seed, ...'."""
        verdict, why = self.judged
        why_text = f" ({undecided_why})" if undecided_why else ""
        if not self.decided:
            return f"No {self._unit(1)} decides it: {self.undecided} {self._unit(self.undecided)} cannot{why_text}: {verdict}."
        low, high = self.interval  # type: ignore[misc]
        text = (f"Holds in {self.holds} of {self.decided} {self._unit(self.decided)} ({_pct(self.share)}, "
                f"{_pct(CONFIDENCE)} CI {_pct(low, False)}-{_pct(high)})")
        if self.undecided:
            text += f"; {self.undecided} more {self._unit(self.undecided)} cannot decide it{why_text}"
        return f"{text}: {verdict}; {why}{self._to_decide(verdict)}."

    def _to_decide(self, verdict: str) -> str:
        """', at this share 8 seeds would make it HOLDS' for a verdict more seeds could settle, else ''."""
        if verdict not in (SOMETIMES, INCONCLUSIVE):
            return ""
        needed = seeds_to_decide(self.holds, self.decided)
        if needed is None:
            return f"; at this share no number of {self.unit} makes it {HOLDS} or {DOES_NOT_HOLD}" if verdict == SOMETIMES else ""
        return f"; at this share {needed[0]} deciding {self._unit(needed[0])} would make it {needed[1]}"

    def _unit(self, n: int) -> str:
        return self.unit if n != 1 else self.unit.removesuffix("s")

    def to_dict(self) -> dict:
        low_high = self.interval
        return {"holds": self.holds, "of": self.decided, "undecided": self.undecided, "unit": self.unit,
                "share": self.share, "interval": list(low_high) if low_high else None, "confidence": CONFIDENCE,
                "bounds": [FAILS_UPPER, HOLDS_LOWER],
                "verdict": self.verdict, "why": self.judged[1],
                "to_decide": list(seeds_to_decide(self.holds, self.decided) or ()) or None}


def count(outcomes: Sequence[bool | None], unit: str = "seeds") -> Tally:
    """A tally of per-unit outcomes: True holds, False does not, None cannot decide."""
    return Tally(sum(o is True for o in outcomes), sum(o is False for o in outcomes), sum(o is None for o in outcomes), unit)


def bootstrap_median(values: Sequence[float], resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED) -> tuple[float | None, float | None, float | None]:
    """(median, low, high): the median of `values` and a percentile bootstrap 95 % interval of it.

    Each resample draws len(values) values with replacement (seeds resampled); the interval is the
    2.5th and 97.5th percentiles of the resampled medians. Fewer than two values give no interval.
    """
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return None, None, None
    median = float(np.median(arr))
    if arr.size < 2:
        return median, None, None
    rng = np.random.default_rng(seed)
    medians = np.median(arr[rng.integers(0, arr.size, size=(resamples, arr.size))], axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail])
    return median, float(low), float(high)


def ratio_effect(fast_name: str, slow_name: str, threshold: float, ratios: Sequence[float | None]) -> dict[str, Any]:
    """The effect of a speed comparison at one threshold: the median ratio of steps (fast / slow) over the seeds where
    both reached it (`ratios`, None where one did not), with its bootstrap interval, and a sentence."""
    got = [r for r in ratios if r is not None]
    median, low, high = bootstrap_median(got)
    label = f"{100 * threshold:.4g} %"
    if median is None:
        text = f"Steps to {label}: no seed where both {fast_name} and {slow_name} reached it, so no ratio."
    else:
        text = (f"Steps to {label}: {fast_name} needs {median:.2f} times {slow_name}'s (median over {len(got)} "
                f"seed{'s' if len(got) != 1 else ''} where both reached it"
                + (f"; 95 % bootstrap CI {low:.2f}-{high:.2f})." if low is not None else "; one seed: no interval)."))
    return {"threshold": threshold, "fast": fast_name, "slow": slow_name, "median_ratio": median,
            "interval": None if low is None else [low, high], "seeds": len(got), "text": text}


def rules() -> list[str]:
    """The verdict rules in words, for the report."""
    return [
        f"Each finding is judged in every seed on its own: it holds, it does not, or that seed cannot decide it "
        f"(its run is short of the budget the claim was made for, or a comparison neither run completed).",
        f"The share of deciding seeds in which it holds gets a {_pct(CONFIDENCE)} Wilson score interval.",
        f"{HOLDS}: the interval's lower bound is at least {_pct(HOLDS_LOWER)} (a fresh seed shows it at odds of at least 2 to 1).",
        f"{DOES_NOT_HOLD}: the interval's upper bound is at most {_pct(FAILS_UPPER)}.",
        f"{SOMETIMES}: neither, and the seeds disagree (at least one holds and one does not).",
        f"{INCONCLUSIVE}: neither, and every seed agrees but there are too few to decide; or no seed decides it; "
        f"or the seeds that cannot decide it could change the verdict (it must be the same whether all of them "
        f"would hold or none would).",
        f"Effects of the comparisons: the median over seeds of the ratio of steps (faster preset / slower), with a "
        f"{_pct(CONFIDENCE)} percentile bootstrap interval ({BOOTSTRAP_RESAMPLES:,} resamples of the seeds, "
        f"resampling seed {BOOTSTRAP_SEED}).",
    ]


def _pct(value: float | None, unit: bool = True) -> str:
    """0.6667 -> '67 %' (or '67'); None -> '—'."""
    if value is None:
        return "—"
    return f"{100 * value:.0f}" + (" %" if unit else "")
