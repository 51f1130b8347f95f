"""The original experiment's six findings, judged PASS / FAIL / INCONCLUSIVE from metrics.

Everything here is a pure function of evaluation curves, so it is tested on
synthetic curves. The thresholds are named constants, fixed before looking at any
results and never tuned to turn a verdict: a claim that does not hold under a
budget is reported as such.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

PASS, FAIL, INCONCLUSIVE = "PASS", "FAIL", "INCONCLUSIVE"

# "Converges" means dense pixel accuracy of at least 90 %. The built-in OVERFIT is
# about 80 % background, so 90 % halves the error of the best constant answer; for a
# target whose majority class is larger, the bar rises to halfway from it to 100 %.
CONVERGED_ACC = 0.90
# The speed comparisons look at steps to 90 % (the verdict) and 95 % (reported).
SPEED_THRESHOLDS = (0.90, 0.95)
# "Faster" means reaching the threshold in at most 90 % of the other's steps; less
# of a difference than that is within seed-to-seed noise and judged INCONCLUSIVE.
FASTER_RATIO = 0.90
# "Fails to converge": over the second half of training the best dense accuracy stays
# within 5 points of the majority rate...
NEAR_MAJORITY = 0.05
# ...and ends at least 5 points below the scaled ReLU's at the same step.
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
# The original experiment's training length.
ORIGINAL_STEPS = 100_000
# A run whose dense accuracy rose by more than this over the last quarter of its budget was still improving (said in the summary).
STILL_IMPROVING = 0.002


@dataclass(frozen=True)
class Curve:
    """One run's evaluation record: steps, dense accuracy and fraction predicted background."""

    steps: Sequence[int]
    acc: Sequence[float]
    pred_bg: Sequence[float] = ()
    diverged_step: int | None = None


@dataclass
class Finding:
    id: int
    title: str
    verdict: str
    summary: str
    numbers: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "verdict": self.verdict, "summary": self.summary,
                "numbers": self.numbers, "thresholds": self.thresholds}


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


def mean_steps_to(curves: Sequence[Curve], threshold: float) -> float | None:
    """Mean steps to threshold over seeds, or None unless every seed reached it."""
    values = [steps_to(c, threshold) for c in curves]
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def final_acc(curves: Sequence[Curve]) -> float:
    return sum(c.acc[-1] for c in curves) / len(curves)


def _fmt_steps(value: float | None) -> str:
    return "not reached" if value is None else f"{value:,.0f}"


def converges(curves: Sequence[Curve], threshold: float) -> tuple[str, dict[str, Any]]:
    """PASS if every seed reaches `threshold`, FAIL if none does, INCONCLUSIVE otherwise."""
    reached = [steps_to(c, threshold) for c in curves]
    n = sum(r is not None for r in reached)
    verdict = PASS if n == len(curves) and n > 0 else FAIL if n == 0 else INCONCLUSIVE
    return verdict, {"threshold": threshold, "seeds_reaching": f"{n}/{len(curves)}",
                     "mean_steps_to_threshold": mean_steps_to(curves, threshold), "final_acc": final_acc(curves)}


def faster(fast: Sequence[Curve], slow: Sequence[Curve], threshold: float) -> tuple[str, float | None, float | None, float | None]:
    """Is `fast` quicker to `threshold` than `slow`? (verdict, fast steps, slow steps, ratio)."""
    a, b = mean_steps_to(fast, threshold), mean_steps_to(slow, threshold)
    if a is None and b is None:
        return INCONCLUSIVE, a, b, None
    if a is None:
        return FAIL, a, b, None
    if b is None:
        return PASS, a, b, None
    ratio = a / b if b > 0 else (1.0 if a == 0 else float("inf"))
    if ratio <= FASTER_RATIO:
        return PASS, a, b, ratio
    return (FAIL if ratio > 1.0 else INCONCLUSIVE), a, b, ratio


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


def band_order_holds(first: Sequence[int | None], tolerance_steps: int) -> str:
    """Low bands learned no later than high ones, within tolerance; None means never learned.

    PASS if the order holds, FAIL if some higher band is learned more than
    `tolerance_steps` before a lower one (or while the lower one never is),
    INCONCLUSIVE if fewer than two bands are learned at all.
    """
    learned = [s for s in first if s is not None]
    if len(learned) < 2:
        return INCONCLUSIVE
    for i, low in enumerate(first):
        for high in first[i + 1:]:
            if high is None:
                continue
            if low is None or high < low - tolerance_steps:
                return FAIL
    return PASS


# -- the six findings ------------------------------------------------------------

def finding_raw_relu_fails(raw: Sequence[Curve], scaled: Sequence[Curve], majority_rate: float) -> Finding:
    """1. Without input scaling, ReLU fails: near the majority rate, far below scaled ReLU."""
    title = "Without input scaling, ReLU fails to converge"
    late = [acc for c in raw for step, acc in zip(c.steps, c.acc) if step >= c.steps[-1] / 2]
    all_acc = [acc for c in raw for step, acc in zip(c.steps, c.acc) if step > 0] or [acc for c in raw for acc in c.acc]
    best_late = max(late)
    raw_final, scaled_final = final_acc(raw), final_acc(scaled)
    gap = scaled_final - raw_final
    ink = bg = flips = evals = 0
    for c in raw:
        i, b, f = constant_predictions(c)
        ink, bg, flips, evals = ink + i, bg + b, flips + f, evals + len(c.pred_bg)
    near = best_late <= majority_rate + NEAR_MAJORITY
    if near and gap >= FAR_BELOW:
        verdict = PASS
    elif raw_final >= converged_threshold(majority_rate) or gap <= 0:
        verdict = FAIL
    else:
        verdict = INCONCLUSIVE
    behaviour = (f"flips between all-ink and all-background {flips} times" if flips else
                 "collapses to a constant prediction" if ink + bg else "never predicts a constant picture")
    summary = (f"relu_raw's dense accuracy stays in [{min(all_acc):.3f}, {max(all_acc):.3f}] against a majority rate of "
               f"{majority_rate:.3f} (best over the second half {best_late:.3f}) and ends at {raw_final:.3f}, "
               f"{gap:.3f} below relu_1 ({scaled_final:.3f}). {ink + bg} of {evals} evaluations predict a nearly constant "
               f"picture ({ink} all ink, {bg} all background); it {behaviour}.")
    return Finding(1, title, verdict, summary,
                   {"majority_rate": majority_rate, "acc_min": min(all_acc), "acc_max": max(all_acc), "best_late_acc": best_late,
                    "relu_raw_final": raw_final, "relu_1_final": scaled_final, "gap": gap, "constant_ink_evals": ink,
                    "constant_bg_evals": bg, "flips": flips, "evaluations": evals},
                   {"NEAR_MAJORITY": NEAR_MAJORITY, "FAR_BELOW": FAR_BELOW, "CONSTANT_FRACTION": CONSTANT_FRACTION})


def _converge_finding(id_: int, title: str, name: str, curves: Sequence[Curve], majority_rate: float) -> Finding:
    threshold = converged_threshold(majority_rate)
    verdict, numbers = converges(curves, threshold)
    budget = max(c.steps[-1] for c in curves)
    diverged = sum(c.diverged_step is not None for c in curves)
    summary = (f"{name} reaches {threshold:.2%} dense accuracy in {numbers['seeds_reaching']} seeds"
               + (f", at step {_fmt_steps(numbers['mean_steps_to_threshold'])} on average" if numbers["mean_steps_to_threshold"] is not None else "")
               + f"; final accuracy {numbers['final_acc']:.3f} after {budget:,} steps"
               + (f"; {diverged} run(s) diverged" if diverged else "") + ".")
    if verdict != PASS and budget < ORIGINAL_STEPS:
        # The claim is about the original's budget: short of it, not converging yet is undecided, never a failure.
        gain = _late_gain(curves)
        trend = (f"accuracy still rose by {gain:.3f} over the last quarter of the run" if gain > STILL_IMPROVING
                 else "accuracy was flat over the last quarter of the run, which a longer run may still leave")
        verdict = INCONCLUSIVE
        summary += (f" Not decided at {budget:,} steps ({trend}): the claim is about the original's {ORIGINAL_STEPS:,} steps; "
                    f"run with --steps {ORIGINAL_STEPS} to judge it there.")
    numbers["budget_steps"] = budget
    return Finding(id_, title, verdict, summary, numbers, {"CONVERGED_ACC": threshold})


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
    return _converge_finding(2, "With inputs scaled to [-1, 1], ReLU converges", "relu_1", scaled, majority_rate)


def finding_tanh_converges(tanh: Sequence[Curve], majority_rate: float) -> Finding:
    """3. tanh with [-1, 1] converges."""
    return _converge_finding(3, "tanh with inputs in [-1, 1] converges", "tanh_1", tanh, majority_rate)


def _speed_finding(id_: int, title: str, fast_name: str, fast: Sequence[Curve], slow_name: str, slow: Sequence[Curve],
                   majority_rate: float, must_converge: bool = False) -> Finding:
    primary = converged_threshold(majority_rate)
    thresholds = sorted({primary, *(t for t in SPEED_THRESHOLDS if t > primary)})
    numbers: dict[str, Any] = {}
    parts = []
    verdict = INCONCLUSIVE
    for t in thresholds:
        v, a, b, ratio = faster(fast, slow, t)
        numbers[f"{fast_name}_steps_to_{t:.0%}"] = a
        numbers[f"{slow_name}_steps_to_{t:.0%}"] = b
        numbers[f"ratio_at_{t:.0%}"] = ratio
        parts.append(f"{t:.2%}: {fast_name} {_fmt_steps(a)} vs {slow_name} {_fmt_steps(b)} steps"
                     + (f" (ratio {ratio:.2f})" if ratio is not None else ""))
        if t == primary:
            verdict = v
    if must_converge:
        conv, _ = converges(fast, primary)
        if conv != PASS:
            verdict = FAIL if conv == FAIL else INCONCLUSIVE
    summary = f"Steps to dense accuracy (mean over seeds), {'; '.join(parts)}."
    return Finding(id_, title, verdict, summary, numbers, {"FASTER_RATIO": FASTER_RATIO, "verdict_threshold": primary})


def finding_cos_scale(cos3: Sequence[Curve], cos1: Sequence[Curve], majority_rate: float) -> Finding:
    """4. cos converges faster with inputs in [-3, 3] than in [-1, 1]."""
    return _speed_finding(4, "cos converges faster with inputs in [-3, 3] than in [-1, 1]", "cos_3", cos3, "cos_1", cos1, majority_rate)


def finding_batchnorm(bn: Sequence[Curve], scaled: Sequence[Curve], majority_rate: float) -> Finding:
    """5. BatchNorm + ReLU on raw inputs converges, and faster than manually scaled ReLU."""
    return _speed_finding(5, "BatchNorm + ReLU without input scaling converges, faster than scaled ReLU",
                          "bn_relu", bn, "relu_1", scaled, majority_rate, must_converge=True)


def finding_spectral_bias(first_by_run: dict[str, Sequence[int | None]], eval_every: int) -> Finding:
    """6. Low frequencies are learned first: per run, bands are learned in order from low to high.

    `first_by_run` maps a run's name to the step at which each band (low to high)
    was first learned. Its numbers list those steps per run, "-" for never.

    PASS if the order holds in every run where it can be judged (at least two bands
    learned), FAIL if it fails in more than half of them, INCONCLUSIVE otherwise.
    """
    tolerance = BAND_TOLERANCE_EVALS * eval_every
    per_run = {name: band_order_holds(first, tolerance) for name, first in first_by_run.items()}
    decided = [v for v in per_run.values() if v != INCONCLUSIVE]
    fails = decided.count(FAIL)
    if decided and fails == 0:
        verdict = PASS
    elif decided and fails > len(decided) / 2:
        verdict = FAIL
    else:
        verdict = INCONCLUSIVE
    held = [n for n, v in per_run.items() if v == PASS]
    broke = [n for n, v in per_run.items() if v == FAIL]
    summary = (f"Bands learned from low to high frequency in {len(held)} of {len(decided)} runs that learned two bands or more"
               + (f" (not in: {', '.join(broke)})" if broke else "") + f"; a band counts as learned when its relative "
               f"error falls below {BAND_THRESHOLD}, with a tolerance of {tolerance:,} steps.")
    def steps_text(first: Sequence[int | None]) -> str:
        return " / ".join("-" if s is None else f"{s:,}" for s in first)

    numbers: dict[str, Any] = {"runs_in_order": len(held), "runs_judged": len(decided)}
    for name, first in first_by_run.items():
        numbers[f"{name} ({per_run[name]})"] = steps_text(first)
    return Finding(6, "Low frequencies are learned before fine detail", verdict, summary, numbers,
                   {"BAND_THRESHOLD": BAND_THRESHOLD, "BAND_TOLERANCE_STEPS": tolerance})


def judge_all(curves: dict[str, Sequence[Curve]], majority_rate: float,
              first_below_by_run: dict[str, Sequence[int | None]], eval_every: int) -> list[Finding]:
    """All six findings from the curves of the six presets (keys: preset names)."""
    return [
        finding_raw_relu_fails(curves["relu_raw"], curves["relu_1"], majority_rate),
        finding_scaled_relu_converges(curves["relu_1"], majority_rate),
        finding_tanh_converges(curves["tanh_1"], majority_rate),
        finding_cos_scale(curves["cos_3"], curves["cos_1"], majority_rate),
        finding_batchnorm(curves["bn_relu"], curves["relu_1"], majority_rate),
        finding_spectral_bias(first_below_by_run, eval_every),
    ]
