"""The original experiment's six findings, judged in every seed and then over the seeds.

For each finding a per-seed predicate says whether it holds in that seed, does not, or
cannot be decided there (True / False / None); `verdicts.py` turns the seeds' outcomes into
a share with its interval and a verdict (HOLDS, DOES NOT HOLD, SOMETIMES, INCONCLUSIVE).
The comparisons also report their effect: per seed the steps each preset needs, and the
median ratio over seeds with a bootstrap interval.

Everything here is a pure function of evaluation curves, so it is tested on
synthetic curves. The thresholds are named constants, fixed before looking at any
results and never tuned to turn a verdict: a claim that does not hold under a
budget is reported as such.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Sequence

from .verdicts import DOES_NOT_HOLD, HOLDS, INCONCLUSIVE, SOMETIMES, Tally, count, ratio_effect

# "Converges" means dense pixel accuracy of at least 90 %. The built-in OVERFIT is
# about 80 % background, so 90 % halves the error of the best constant answer; for a
# target whose majority class is larger, the bar rises to halfway from it to 100 %.
CONVERGED_ACC = 0.90
# The speed comparisons look at steps to 90 % (the verdict) and 95 % (reported).
SPEED_THRESHOLDS = (0.90, 0.95)
# "Faster" in a seed means reaching the threshold in at most 90 % of the other's steps (the run
# of the same seed); less of a difference than that is within evaluation spacing and noise, and
# that seed does not count as faster.
FASTER_RATIO = 0.90
# "Fails to converge", in a seed: over the second half of training the best dense accuracy
# stays within 5 points of the majority rate...
NEAR_MAJORITY = 0.05
# ...while the scaled ReLU of the same seed converges and ends at least 5 points above it.
FAR_BELOW = 0.05
# A prediction is "nearly constant" (all ink or all background) when at least 98 %
# of the pixels get the same class.
CONSTANT_FRACTION = 0.98
# A frequency band is "learned" once its relative spectral error falls below 0.5:
# the prediction carries more than half of the target's magnitude in that band.
BAND_THRESHOLD = 0.5
# Low-before-high may be violated by up to one evaluation interval (the steps at
# which bands are learned are only known to that resolution).
BAND_TOLERANCE_EVALS = 1
# The original experiment's training length: the budget its claims were made for. A run short of
# it decides a convergence claim only by converging (and a non-convergence claim only by converging).
ORIGINAL_STEPS = 100_000
# A run whose dense accuracy rose by more than this over the last quarter of its budget was still improving (said in the summary).
STILL_IMPROVING = 0.002


@dataclass(frozen=True)
class Curve:
    """One run's evaluation record: steps, dense accuracy and fraction predicted background; its seed pairs it
    with the other presets' run of the same seed."""

    steps: Sequence[int]
    acc: Sequence[float]
    pred_bg: Sequence[float] = ()
    diverged_step: int | None = None
    seed: int | None = None


@dataclass
class Finding:
    """A finding's verdict over the seeds, the numbers behind it, and per seed whether it held (and why)."""

    id: int
    title: str
    verdict: str
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    tally: Tally | None = None
    sentence: str = ""
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    effects: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "verdict": self.verdict, "sentence": self.sentence,
                "share": self.tally.to_dict() if self.tally else None, "effects": self.effects,
                "summary": self.summary, "numbers": self.numbers, "thresholds": self.thresholds, "per_seed": self.per_seed}


# The six findings' titles, and the presets each of the first five is judged from (the sixth reads every run's bands).
TITLES = {1: "Without input scaling, ReLU fails to converge", 2: "With inputs scaled to [-1, 1], ReLU converges",
          3: "tanh with inputs in [-1, 1] converges", 4: "cos converges faster with inputs in [-3, 3] than in [-1, 1]",
          5: "BatchNorm + ReLU without input scaling converges, faster than scaled ReLU",
          6: "Low frequencies are learned before fine detail"}
NEEDS = {1: ("relu_raw", "relu_1"), 2: ("relu_1",), 3: ("tanh_1",), 4: ("cos_3", "cos_1"), 5: ("bn_relu", "relu_1")}


# -- building blocks -----------------------------------------------------------

def converged_threshold(majority_rate: float) -> float:
    """The accuracy that counts as converged for a target with this majority-class rate."""
    return max(CONVERGED_ACC, majority_rate + 0.5 * (1.0 - majority_rate))


def steps_to(curve: Curve, threshold: float) -> int | None:
    """First evaluated step with dense accuracy >= threshold, or None."""
    for step, acc in zip(curve.steps, curve.acc):
        if acc >= threshold:
            return int(step)
    return None


def median_steps_to(curves: Sequence[Curve], threshold: float) -> float | None:
    """Median steps to threshold over the seeds that reached it, or None if none did."""
    values = [s for s in (steps_to(c, threshold) for c in curves) if s is not None]
    return float(statistics.median(values)) if values else None


def final_acc(curves: Sequence[Curve]) -> float:
    return sum(c.acc[-1] for c in curves) / len(curves)


def at_full_budget(curve: Curve) -> bool:
    """Did the run get the budget the claims were made for? A diverged run did: it will never converge."""
    return curve.diverged_step is not None or (len(curve.steps) > 0 and curve.steps[-1] >= ORIGINAL_STEPS)


def by_seed(*presets: Sequence[Curve]) -> list[tuple[Any, list[Curve | None]]]:
    """The presets' runs paired by seed: [(seed, [curve of each preset or None])], in seed order.

    Curves without a seed pair by position (0, 1, ...).
    """
    keyed = [{(c.seed if c.seed is not None else i): c for i, c in enumerate(curves)} for curves in presets]
    seeds = sorted({k for d in keyed for k in d}, key=lambda k: (str(type(k)), k))
    return [(seed, [d.get(seed) for d in keyed]) for seed in seeds]


def _fmt_steps(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def _pct(value: float) -> str:
    """0.9 -> '90 %', 0.975 -> '97.5 %'."""
    return f"{100 * value:.4g} %"


def _short_of_budget(n: int) -> str:
    return f"{n} {'run' if n == 1 else 'runs'} short of the original's {ORIGINAL_STEPS:,} steps"


def seed_converges(curve: Curve, threshold: float) -> tuple[bool | None, str]:
    """Does this run converge? Yes once it reaches `threshold`; no if it diverged or trained the original's
    budget without reaching it; undecided while it is short of that budget."""
    step = steps_to(curve, threshold)
    if step is not None:
        return True, f"reached {threshold:.2%} at step {step:,}"
    best = max(curve.acc) if curve.acc else float("nan")
    if curve.diverged_step is not None:
        return False, f"diverged at step {curve.diverged_step:,} (best accuracy {best:.3f})"
    if at_full_budget(curve):
        return False, f"best accuracy {best:.3f} in {curve.steps[-1]:,} steps"
    return None, f"best accuracy {best:.3f} at step {curve.steps[-1]:,}, short of the original's {ORIGINAL_STEPS:,}"


def seed_raw_relu_fails(raw: Curve, scaled: Curve, majority_rate: float) -> tuple[bool | None, str]:
    """Finding 1 in one seed: relu_raw stays near the majority rate while relu_1 of the same seed converges.

    No if relu_raw converges (at any budget) or, at the original's budget, rises clearly above the
    majority rate; undecided short of that budget, or where relu_1 does not converge either (no contrast).
    """
    threshold = converged_threshold(majority_rate)
    reached = steps_to(raw, threshold)
    if reached is not None:
        return False, f"relu_raw reached {threshold:.2%} at step {reached:,}"
    best_late = max(acc for step, acc in zip(raw.steps, raw.acc) if step >= raw.steps[-1] / 2)
    if not at_full_budget(raw):
        return None, f"relu_raw at {best_late:.3f} (best over the second half), short of the original's {ORIGINAL_STEPS:,} steps"
    if best_late > majority_rate + NEAR_MAJORITY:
        return False, f"relu_raw rose to {best_late:.3f} over the second half, above the majority rate + {NEAR_MAJORITY}"
    gap = scaled.acc[-1] - raw.acc[-1]
    if steps_to(scaled, threshold) is None or gap < FAR_BELOW:
        return None, f"relu_raw stays near the majority rate ({best_late:.3f}), but relu_1 does not converge above it"
    return True, f"relu_raw at most {best_late:.3f} over the second half, {gap:.3f} below relu_1"


def seed_faster(fast: Curve, slow: Curve, threshold: float, must_converge: bool = False) -> tuple[bool | None, int | None, int | None, float | None]:
    """Is `fast` quicker to `threshold` than `slow` (the same seed)? (holds, fast's steps, slow's steps, ratio).

    Holds if it reaches it in at most FASTER_RATIO of slow's steps, or slow never does; not if fast never
    does while slow does; undecided if neither does (with `must_converge`, a fast run that never gets
    there at the original's budget decides it: no).
    """
    a, b = steps_to(fast, threshold), steps_to(slow, threshold)
    if a is None and b is None:
        return (False if must_converge and at_full_budget(fast) else None), a, b, None
    if a is None:
        return False, a, b, None
    if b is None:
        return True, a, b, None
    ratio = a / b if b > 0 else (1.0 if a == 0 else float("inf"))
    return ratio <= FASTER_RATIO, a, b, ratio


def constant_predictions(curve: Curve) -> tuple[int, int, int]:
    """(evaluations predicting nearly all ink, nearly all background, switches between the two)."""
    states = []
    for fraction in curve.pred_bg:
        states.append("bg" if fraction >= CONSTANT_FRACTION else "ink" if fraction <= 1 - CONSTANT_FRACTION else None)
    flips, last = 0, None
    for s in states:
        if s is not None:
            if last is not None and s != last:
                flips += 1
            last = s
    return states.count("ink"), states.count("bg"), flips


def band_order_holds(first: Sequence[int | None], tolerance_steps: int) -> bool | None:
    """Low bands learned no later than high ones, within tolerance; None means never learned.

    True if the order holds, False if some higher band is learned more than
    `tolerance_steps` before a lower one (or while the lower one never is),
    None if fewer than two bands are learned at all.
    """
    learned = [s for s in first if s is not None]
    if len(learned) < 2:
        return None
    for i, low in enumerate(first):
        for high in first[i + 1:]:
            if high is None:
                continue
            if low is None or high < low - tolerance_steps:
                return False
    return True


def _judged(id_: int, title: str, outcomes: list[tuple[Any, bool | None, str]], summary: str, numbers: dict[str, Any],
            thresholds: dict[str, Any], undecided_why: str = "", unit: str = "seeds", key: str = "seed",
            extra: list[dict[str, Any]] | None = None, effects: list[dict[str, Any]] | None = None) -> Finding:
    """A finding from its per-unit outcomes [(seed or run, holds, why)]: the tally, its verdict and sentence."""
    tally = count([holds for _, holds, _ in outcomes], unit)
    per_seed = [{key: k, "holds": holds, "note": note, **((extra or [{}] * len(outcomes))[i])}
                for i, (k, holds, note) in enumerate(outcomes)]
    return Finding(id_, title, tally.verdict, summary, numbers, thresholds, tally, tally.sentence(undecided_why),
                   per_seed, effects or [])


# -- the six findings ------------------------------------------------------------

def finding_raw_relu_fails(raw: Sequence[Curve], scaled: Sequence[Curve], majority_rate: float) -> Finding:
    """1. Without input scaling, ReLU fails: near the majority rate, far below scaled ReLU (per seed)."""
    title = TITLES[1]
    outcomes = []
    short = no_contrast = 0  # why seeds are undecided: a raw run short of the budget, or no contrast with relu_1
    for seed, (r, s) in by_seed(raw, scaled):
        if r is None or s is None:
            outcomes.append((seed, None, "no evaluation of " + ("relu_raw" if r is None else "relu_1")))
            continue
        outcomes.append((seed, *seed_raw_relu_fails(r, s, majority_rate)))
        if outcomes[-1][1] is None:
            short, no_contrast = (short + 1, no_contrast) if not at_full_budget(r) else (short, no_contrast + 1)
    late = [acc for c in raw for step, acc in zip(c.steps, c.acc) if step >= c.steps[-1] / 2]
    all_acc = [acc for c in raw for step, acc in zip(c.steps, c.acc) if step > 0] or [acc for c in raw for acc in c.acc]
    best_late = max(late)
    raw_final, scaled_final = final_acc(raw), final_acc(scaled)
    gap = scaled_final - raw_final
    ink = bg = flips = evals = 0
    for c in raw:
        i, b, f = constant_predictions(c)
        ink, bg, flips, evals = ink + i, bg + b, flips + f, evals + len(c.pred_bg)
    behaviour = (f"flips between all-ink and all-background {flips} times" if flips else
                 "collapses to a constant prediction" if ink + bg else "never predicts a constant picture")
    summary = (f"relu_raw's dense accuracy stays in [{min(all_acc):.3f}, {max(all_acc):.3f}] against a majority rate of "
               f"{majority_rate:.3f} (best over the second half {best_late:.3f}) and ends at {raw_final:.3f} on average, "
               f"{gap:.3f} below relu_1 ({scaled_final:.3f}). {ink + bg} of {evals} evaluations predict a nearly constant "
               f"picture ({ink} all ink, {bg} all background); it {behaviour}.")
    why = ([_short_of_budget(short) + ", where only converging decides it"] if short else []) \
        + ([f"{no_contrast} where relu_1 does not converge either"] if no_contrast else [])
    return _judged(1, title, outcomes, summary,
                   {"majority_rate": majority_rate, "acc_min": min(all_acc), "acc_max": max(all_acc), "best_late_acc": best_late,
                    "relu_raw_final": raw_final, "relu_1_final": scaled_final, "gap": gap, "constant_ink_evals": ink,
                    "constant_bg_evals": bg, "flips": flips, "evaluations": evals},
                   {"NEAR_MAJORITY": NEAR_MAJORITY, "FAR_BELOW": FAR_BELOW, "CONSTANT_FRACTION": CONSTANT_FRACTION,
                    "ORIGINAL_STEPS": ORIGINAL_STEPS},
                   undecided_why="; ".join(why))


def _converge_finding(id_: int, title: str, name: str, curves: Sequence[Curve], majority_rate: float) -> Finding:
    threshold = converged_threshold(majority_rate)
    runs = [(seed, c) for seed, (c,) in by_seed(curves) if c is not None]
    outcomes = [(seed, *seed_converges(c, threshold)) for seed, c in runs]
    reached = sum(steps_to(c, threshold) is not None for c in curves)
    median = median_steps_to(curves, threshold)
    budget = max(c.steps[-1] for c in curves)
    diverged = sum(c.diverged_step is not None for c in curves)
    summary = (f"{name} reaches {threshold:.2%} dense accuracy in {reached} of {len(curves)} seeds"
               + (f", at step {_fmt_steps(median)} (median)" if median is not None else "")
               + f"; final accuracy {final_acc(curves):.3f} (mean) after at most {budget:,} steps"
               + (f"; {diverged} run(s) diverged" if diverged else "") + ".")
    open_ = [c for (_, holds, _), (_, c) in zip(outcomes, runs) if holds is None]
    if open_:
        # The claim is about the original's budget: short of it, not converging yet is undecided, never a failure.
        gain = _late_gain(open_)
        trend = (f"accuracy still rose by {gain:.3f} over the last quarter of the run" if gain > STILL_IMPROVING
                 else "accuracy was flat over the last quarter of the run, which a longer run may still leave")
        summary += (f" {len(open_)} seed(s) not decided at {budget:,} steps ({trend}): the claim is about the original's "
                    f"{ORIGINAL_STEPS:,} steps; run with --steps {ORIGINAL_STEPS} to judge it there.")
    numbers = {"threshold": threshold, "seeds_reaching": f"{reached}/{len(curves)}", "median_steps_to_threshold": median,
               "final_acc": final_acc(curves), "budget_steps": budget}
    return _judged(id_, title, outcomes, summary, numbers, {"CONVERGED_ACC": threshold, "ORIGINAL_STEPS": ORIGINAL_STEPS},
                   undecided_why=_short_of_budget(len(open_)) + ", not converged yet")


def _late_gain(curves: Sequence[Curve]) -> float:
    """Mean rise of dense accuracy over the last quarter of the runs: how much a run was still improving when it ended."""
    gains = []
    for c in curves:
        end = c.steps[-1]
        before = [acc for step, acc in zip(c.steps, c.acc) if step <= 0.75 * end]
        if before:
            gains.append(c.acc[-1] - before[-1])
    return sum(gains) / len(gains) if gains else 0.0


def finding_scaled_relu_converges(scaled: Sequence[Curve], majority_rate: float) -> Finding:
    """2. With inputs scaled to [-1, 1], ReLU converges."""
    return _converge_finding(2, TITLES[2], "relu_1", scaled, majority_rate)


def finding_tanh_converges(tanh: Sequence[Curve], majority_rate: float) -> Finding:
    """3. tanh with [-1, 1] converges."""
    return _converge_finding(3, TITLES[3], "tanh_1", tanh, majority_rate)


def _speed_finding(id_: int, title: str, fast_name: str, fast: Sequence[Curve], slow_name: str, slow: Sequence[Curve],
                   majority_rate: float, must_converge: bool = False) -> Finding:
    primary = converged_threshold(majority_rate)
    thresholds = sorted({primary, *(t for t in SPEED_THRESHOLDS if t > primary)})
    outcomes, extra = [], []
    ratios: dict[float, list[float | None]] = {t: [] for t in thresholds}
    for seed, (a, b) in by_seed(fast, slow):
        if a is None or b is None:
            outcomes.append((seed, None, "no evaluation of " + (fast_name if a is None else slow_name)))
            extra.append({"steps_to": {}})
            continue
        steps: dict[str, dict[str, Any]] = {}
        holds: bool | None = None
        for t in thresholds:
            h, sa, sb, ratio = seed_faster(a, b, t, must_converge)
            ratios[t].append(ratio)
            steps[f"{t:g}"] = {fast_name: sa, slow_name: sb, "ratio": ratio}
            if t == primary:
                holds = h
        p = steps[f"{primary:g}"]
        note = (f"{primary:.2%}: {fast_name} {_fmt_steps(p[fast_name])} vs {slow_name} {_fmt_steps(p[slow_name])} steps"
                + (f" (ratio {p['ratio']:.2f})" if p["ratio"] is not None else ""))
        outcomes.append((seed, holds, note))
        extra.append({"steps_to": steps})
    numbers: dict[str, Any] = {}
    parts = []
    for t in thresholds:
        a, b = median_steps_to(fast, t), median_steps_to(slow, t)
        na, nb = sum(steps_to(c, t) is not None for c in fast), sum(steps_to(c, t) is not None for c in slow)
        numbers[f"{fast_name}_median_steps_to_{t:.0%}"] = a
        numbers[f"{slow_name}_median_steps_to_{t:.0%}"] = b
        parts.append(f"{t:.2%}: {fast_name} {_fmt_steps(a)} ({na}/{len(fast)} seeds), {slow_name} {_fmt_steps(b)} ({nb}/{len(slow)} seeds)")
    summary = f"Steps to dense accuracy, median over the seeds that reached it: {'; '.join(parts)}."
    if must_converge:
        summary += f" {fast_name} must also converge: a seed where it never reaches {primary:.2%} does not count as faster."
    effects = [ratio_effect(fast_name, slow_name, t, ratios[t]) for t in thresholds]
    return _judged(id_, title, outcomes, summary, numbers, {"FASTER_RATIO": FASTER_RATIO, "verdict_threshold": primary},
                   undecided_why=f"neither run reached {_pct(primary)}", extra=extra, effects=effects)


def finding_cos_scale(cos3: Sequence[Curve], cos1: Sequence[Curve], majority_rate: float) -> Finding:
    """4. cos converges faster with inputs in [-3, 3] than in [-1, 1]."""
    return _speed_finding(4, TITLES[4], "cos_3", cos3, "cos_1", cos1, majority_rate)


def finding_batchnorm(bn: Sequence[Curve], scaled: Sequence[Curve], majority_rate: float) -> Finding:
    """5. BatchNorm + ReLU on raw inputs converges, and faster than manually scaled ReLU."""
    return _speed_finding(5, TITLES[5], "bn_relu", bn, "relu_1", scaled, majority_rate, must_converge=True)


def finding_spectral_bias(first_by_run: dict[str, Sequence[int | None]], eval_every: int) -> Finding:
    """6. Low frequencies are learned first: in each run, bands are learned in order from low to high.

    `first_by_run` maps a run's name to the step at which each band (low to high)
    was first learned. Each run is judged on its own (every preset but relu_raw, every
    seed: independent fits of one claim about networks in general); a run that learned
    fewer than two bands cannot decide it.
    """
    tolerance = BAND_TOLERANCE_EVALS * eval_every
    per_run = {name: band_order_holds(first, tolerance) for name, first in first_by_run.items()}
    held = [n for n, v in per_run.items() if v is True]
    broke = [n for n, v in per_run.items() if v is False]
    summary = (f"Bands learned from low to high frequency in {len(held)} of {len(held) + len(broke)} runs that learned two bands or more"
               + (f" (not in: {', '.join(broke)})" if broke else "") + f"; a band counts as learned when its relative "
               f"error falls below {BAND_THRESHOLD}, with a tolerance of {tolerance:,} steps.")

    def steps_text(first: Sequence[int | None]) -> str:
        return " / ".join("-" if s is None else f"{s:,}" for s in first)

    outcomes = [(name, holds, f"bands first learned at {steps_text(first_by_run[name])}") for name, holds in per_run.items()]
    numbers: dict[str, Any] = {"runs_in_order": len(held), "runs_judged": len(held) + len(broke)}
    return _judged(6, TITLES[6], outcomes, summary, numbers,
                   {"BAND_THRESHOLD": BAND_THRESHOLD, "BAND_TOLERANCE_STEPS": tolerance},
                   undecided_why="fewer than two bands learned", unit="runs", key="run")


def judge_all(curves: dict[str, Sequence[Curve]], majority_rate: float,
              first_below_by_run: dict[str, Sequence[int | None]], eval_every: int) -> list[Finding]:
    """All six findings from the curves of the six presets (keys: preset names). A finding one of whose presets has no
    run with an evaluation (each failed before its first) is not judged, and says so."""
    c = defaultdict(list, curves)
    judges = [lambda: finding_raw_relu_fails(c["relu_raw"], c["relu_1"], majority_rate),
              lambda: finding_scaled_relu_converges(c["relu_1"], majority_rate), lambda: finding_tanh_converges(c["tanh_1"], majority_rate),
              lambda: finding_cos_scale(c["cos_3"], c["cos_1"], majority_rate), lambda: finding_batchnorm(c["bn_relu"], c["relu_1"], majority_rate),
              lambda: finding_spectral_bias(first_below_by_run, eval_every)]
    found = []
    for id_, judge in enumerate(judges, 1):
        why = " or ".join(preset for preset in NEEDS.get(id_, ()) if not c[preset])
        found.append(_judged(id_, TITLES[id_], [], f"Not judged: no run of {why} has an evaluation.", {}, {},
                             undecided_why=f"no run of {why} has an evaluation") if why else judge())
    return found


def rules(majority_rate: float) -> list[str]:
    """The declared rules, in words, for the report: what holding in a seed means for each finding, then the verdicts."""
    from . import verdicts

    t = converged_threshold(majority_rate)
    return [
        f"Converging: dense accuracy of at least {_pct(t)} (at least {_pct(CONVERGED_ACC)}; halfway from the majority rate to 100 % "
        f"where that is higher). The claims are about the original's {ORIGINAL_STEPS:,} steps: a run short of them decides "
        "a convergence claim only by converging; a diverged run never converges.",
        f"1 holds in a seed when relu_raw's best accuracy over the second half of its run stays within {NEAR_MAJORITY:g} of the "
        f"majority rate while relu_1 of the same seed converges and ends at least {FAR_BELOW:g} above it; it does not when "
        "relu_raw converges or rises further.",
        "2 and 3 hold in a seed when that seed's run converges.",
        f"4 and 5 hold in a seed when the faster preset reaches {_pct(t)} in at most {FASTER_RATIO:g} times the other's steps "
        "(the run of the same seed), or the other never does; a seed where neither does cannot decide it (for 5, where "
        "bn_relu never converges in the original's budget, it does not hold).",
        f"6 holds in a run (every preset but relu_raw, every seed) when its frequency bands fall below a relative error of "
        f"{BAND_THRESHOLD:g} from low to high, within {BAND_TOLERANCE_EVALS} evaluation; a run that learns fewer than two bands "
        "cannot decide it.",
        *verdicts.rules(),
    ]
