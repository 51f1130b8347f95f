"""Unit statistics of the six presets' networks over time, the steps to show the network at, and one sentence
of evidence per finding, written from the numbers (never for a particular outcome).

    inside = summarise(history, weight_steps, curve)     # per preset, seed 0
    sentences = evidence(insides, meta)                  # finding id -> sentence
"""

from __future__ import annotations

from typing import Any, Sequence

from ..loading import nearest_step
from .findings import Curve, steps_to

VIEW_THRESHOLD = 0.90  # the middle network view: the step this accuracy is first reached (else the middle evaluation)


def _series(history: Sequence[dict[str, Any]], key: str) -> list[list[float | None]]:
    """Per record, the hidden layers' `key` (the output layer has none)."""
    return [[layer.get(key) for layer in r.get("layers", []) if layer.get("layer") != "output"] for r in history]


def summarise(history: Sequence[dict[str, Any]], weight_steps: Sequence[int], curve: Curve | None) -> dict[str, Any]:
    """Dead and saturated fractions and pre-activation std per hidden layer at each evaluation, and three steps to draw."""
    steps = [int(r["step"]) for r in history]
    views: list[int] = []
    if weight_steps and steps:
        reached = steps_to(curve, VIEW_THRESHOLD) if curve is not None else None
        middle = reached if reached is not None else steps[len(steps) // 2]
        for wanted in (steps[0], middle, steps[-1]):
            at = nearest_step(list(weight_steps), wanted)
            if at is not None and at not in views:
                views.append(at)
    units = [layer["units"] for layer in history[0].get("layers", []) if layer.get("layer") != "output"] if history else []
    return {"steps": steps, "units": units, "dead": _series(history, "dead"), "saturated": _series(history, "saturated"),
            "pre_std": _series(history, "pre_std"), "view_steps": views,
            "view_reason": "first reached 90 % dense accuracy" if curve is not None and steps_to(curve, VIEW_THRESHOLD) is not None
            else "the middle evaluation"}


def _count(fraction: float | None, units: int) -> int | None:
    return None if fraction is None else round(fraction * units)


def _at(inside: dict[str, Any], key: str, index: int, layer: int = 0) -> float | None:
    rows = inside.get(key) or []
    if not rows or not rows[index] or layer >= len(rows[index]):
        return None
    return rows[index][layer]


def _all_units(inside: dict[str, Any], key: str, index: int) -> tuple[int, int] | None:
    """(units with the state, all hidden units) at evaluation `index`, or None without data."""
    rows = inside.get(key) or []
    if not rows or not rows[index] or any(v is None for v in rows[index]):
        return None
    return sum(round(f * u) for f, u in zip(rows[index], inside["units"])), sum(inside["units"])


def _stds(inside: dict[str, Any], index: int) -> str:
    return ", ".join("-" if v is None else f"{v:.3g}" for v in (inside.get("pre_std") or [[]])[index])


def evidence(insides: dict[str, dict[str, Any]], meta: dict[str, Any], spectrum: dict[str, Any] | None = None,
             threshold: float | None = None) -> dict[int, str]:
    """One sentence per finding (by id) from the presets' inside numbers (and, for finding 6, the seed-0 band
    errors: `spectrum[preset]["first_below"]`); findings without the data get none."""
    out: dict[int, str] = {}
    learned = {p: s.get("first_below") or [] for p, s in (spectrum or {}).items() if p != "relu_raw"}
    if learned and threshold is not None:
        preset = max(learned, key=lambda p: (sum(step is not None for step in learned[p]), p))
        firsts = learned[preset]
        steps = ", ".join(f"band {i + 1}: {'never' if step is None else f'{step:,}'}" for i, step in enumerate(firsts))
        out[6] = (f"{preset} (seed 0) first brought each frequency band's error below {threshold:g} at these steps, "
                  f"from the lowest band to the highest: {steps}.")
    raw, scaled, tanh = insides.get("relu_raw"), insides.get("relu_1"), insides.get("tanh_1")
    cos1, cos3, bn = insides.get("cos_1"), insides.get("cos_3"), insides.get("bn_relu")
    side = max(int(meta.get("width", 0) or 0), int(meta.get("height", 0) or 0)) - 1
    if raw and scaled and raw["steps"] and scaled["steps"] and _at(raw, "dead", 0) is not None and _at(scaled, "dead", 0) is not None:
        n = raw["units"][0]
        out[1] = (f"At step 0, {_count(_at(raw, 'dead', 0), n)} of {n} first-layer units of relu_raw output 0 on every "
                  f"evaluation point (its inputs are raw pixel coordinates, from 0 to {side}), against "
                  f"{_count(_at(scaled, 'dead', 0), n)} of {n} for relu_1 (inputs in [-1, 1]); after the last step, "
                  f"{_count(_at(raw, 'dead', -1), n)} and {_count(_at(scaled, 'dead', -1), n)}.")
    if scaled and scaled["steps"]:
        start, end = _all_units(scaled, "dead", 0), _all_units(scaled, "dead", -1)
        if start and end:
            out[2] = (f"relu_1 has {start[0]} of {start[1]} hidden units dead at step 0 and {end[0]} of {end[1]} after "
                      f"step {scaled['steps'][-1]:,}.")
    if tanh and tanh["steps"]:
        start, end = _all_units(tanh, "saturated", 0), _all_units(tanh, "saturated", -1)
        if start and end:
            out[3] = (f"tanh_1 has {start[0]} of {start[1]} hidden units saturated (|tanh| > 0.99 on every evaluation point) "
                      f"at step 0 and {end[0]} of {end[1]} after step {tanh['steps'][-1]:,}.")
    if cos1 and cos3 and cos1["steps"] and cos3["steps"]:
        a, b = _at(cos3, "pre_std", 0), _at(cos1, "pre_std", 0)
        if a is not None and b is not None:
            out[4] = (f"First-layer pre-activation std at step 0: {a:.3g} for cos_3 against {b:.3g} for cos_1, "
                      f"a ratio of {a / b:.3g}." if b else f"First-layer pre-activation std at step 0: {a:.3g} for cos_3, {b:.3g} for cos_1.")
    if bn and raw and len(bn["steps"]) > 1 and len(raw["steps"]) > 1:
        out[5] = (f"Pre-activation std per hidden layer at step {bn['steps'][1]:,}: {_stds(bn, 1)} for bn_relu (after "
                  f"BatchNorm, same raw inputs) against {_stds(raw, 1)} for relu_raw at step {raw['steps'][1]:,}.")
    return out
