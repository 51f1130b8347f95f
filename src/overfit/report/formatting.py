"""How results read in every part of the report: numbers, step counts, durations, the intro.

Also what they look like: one colour per preset, the same in the figures, the grid video
and the HTML tables. Everything here takes plain JSON values from `results` and is
tolerant of missing keys and nulls (they become "—" or NaN, never an exception).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .. import metricinfo

# One colour per preset, in preset order: matplotlib's qualitative tab10, the most legible
# set of six distinct line colours on white.
PRESET_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")

_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


# ----------------------------------------------------------------------------- numbers


def num(value: Any) -> float:
    """A JSON number as float; None, strings and non-finite values become NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return math.nan
    return float(value) if math.isfinite(value) else math.nan


def format_steps(entry: dict) -> str:
    """Table cell for "steps to reach an accuracy", from {"mean", "spread", "reached", "of"}.

    All seeds reached it: "12,000 ± 500" (spread only with two or more seeds); some did:
    "12,000 (1/2 seeds)" (mean over those that did); none did: "not reached".
    """
    mean = num(entry.get("mean"))
    reached = entry.get("reached")
    of = entry.get("of")
    if math.isnan(mean) or reached == 0:
        return "not reached"
    text = f"{round(mean):,}"
    spread = num(entry.get("spread"))
    if not math.isnan(spread) and (reached is None or reached >= 2):
        text += f" ± {round(spread):,}"
    if reached is not None and of is not None and reached < of:
        text += f" ({reached}/{of} seeds)"
    return text


def format_value(value: Any) -> str:
    """A number from the findings' `numbers`/`thresholds`: short, thousands separated."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value.is_integer() and abs(value) >= 1000:
            return f"{int(value):,}"
        return f"{value:.4g}"
    return str(value)


def format_seconds(seconds: float) -> str:
    """'8.2 s', '42 s', '3 min 05 s', '1 h 02 min'; '—' for NaN."""
    if math.isnan(seconds):
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def mean_spread(entry: dict | None, scale: float, digits: int, unit: str = "") -> str:
    """'99.12 ± 0.05 %' from {"mean", "spread"}; '—' when the mean is missing."""
    entry = entry or {}
    mean = num(entry.get("mean"))
    if math.isnan(mean):
        return "—"
    spread = num(entry.get("spread"))
    text = f"{mean * scale:.{digits}f}"
    if not math.isnan(spread):
        text += f" ± {spread * scale:.{digits}f}"
    return text + unit


# The final metrics the reproduction's tables show, as evaluation record keys; a table row holds each as
# `final_<metric>` (reproduce/analysis.py), and the label, scale, digits and unit are the metric registry's.
FINAL_METRICS = ("dense_acc", "dense_iou")


def final_columns(row: dict) -> list[tuple[str, str]]:
    """('final accuracy', '99.12 ± 0.05 %') per FINAL_METRICS: a mean over seeds gets one digit more than one value."""
    out = []
    for key in FINAL_METRICS:
        m = metricinfo.info(key)
        text = mean_spread(row.get("final_" + m.name), m.scale, m.digits + 1, f" {m.unit}" if m.unit else "")
        out.append((f"final {m.label}", text))
    return out


def wall_time(entry: dict | None) -> str:
    """Wall time from {"mean", "spread"} in seconds; the spread only when it is noticeable."""
    entry = entry or {}
    mean = num(entry.get("mean"))
    spread = num(entry.get("spread"))
    text = format_seconds(mean)
    if not math.isnan(mean) and not math.isnan(spread) and spread >= 0.05 * mean and spread >= 1:
        text += f" ± {format_seconds(spread)}"
    return text


def pct_label(key: str) -> str:
    """'0.95' -> '95 %'."""
    try:
        return f"{float(key) * 100:g} %"
    except ValueError:
        return key


# ----------------------------------------------------------------------------- colours


def preset_colors(names: Sequence[str]) -> dict[str, str]:
    """Preset name -> '#rrggbb', in preset order, cycling through PRESET_COLORS."""
    return {name: PRESET_COLORS[i % len(PRESET_COLORS)] for i, name in enumerate(names)}


def hex_rgb(color: str) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) in 0..255."""
    return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))


# ----------------------------------------------------------------------------- results


def seed0(preset: dict) -> dict:
    """The run of seed 0 (the one whose frames are in the video), else the first run."""
    runs = preset.get("runs", [])
    return next((r for r in runs if r.get("seed") == 0), runs[0] if runs else {})


def step_keys(table: list[dict]) -> list[str]:
    """The accuracy levels of the "steps to reach" columns ('0.9', '0.95', ...), in order."""
    return list(table[0].get("steps_to", {})) if table else []


def variant_verdict(variant: dict, finding_id: Any) -> str | None:
    """A variant's verdict on one finding (keys are strings after a JSON round trip)."""
    verdicts = variant.get("verdicts", {})
    return verdicts.get(str(finding_id), verdicts.get(finding_id))


def variant_finding(variant: dict, finding_id: Any) -> dict | None:
    """A variant's judgement of one finding (of a reproduction with several variants), or None."""
    return next((f for f in variant.get("findings") or [] if str(f.get("id")) == str(finding_id)), None)


def share_texts(share: dict | None) -> tuple[str, str]:
    """('5/8 seeds', '31–86 %'): in how many of the seeds (or runs) that decide it a finding holds, and the 95 %
    interval of that share; ('—', '') without a share."""
    if not share or share.get("of") is None:
        return "—", ""
    text = f"{share.get('holds', 0)}/{share['of']} {share.get('unit', 'seeds')}"
    if share.get("undecided"):
        text += f" ({share['undecided']} undecided)"
    interval = share.get("interval")
    return text, (f"{100 * interval[0]:.0f}–{100 * interval[1]:.0f} %" if interval else "")


def variant_status(variant: dict) -> str:
    """How a variant's runs ended, preset by preset: 'relu_raw: 2 trained 200 steps; relu_1: ...'."""
    return "; ".join(f"{row.get('preset', '')}: {row.get('status', '')}" for row in variant.get("table") or [])


_OUTCOME_WORDS = {True: "holds", False: "does not hold", None: "cannot decide"}


def outcome_name(row: dict) -> str:
    """Whom a finding's per-seed outcome is about: 'seed 3', or a run's name for the findings judged per run."""
    return f"seed {row['seed']}" if "seed" in row else str(row.get("run", ""))


def outcome_word(row: dict) -> str:
    """'holds', 'does not hold' or 'cannot decide' for a per-seed outcome (`holds`: true, false or null)."""
    return _OUTCOME_WORDS.get(row.get("holds"), "?")


def outcome_unit(finding: dict) -> str:
    """'seed' or 'run': what a finding's share counts."""
    return str((finding.get("share") or {}).get("unit", "seeds")).removesuffix("s")


def run_facts(meta: dict) -> dict[str, Any]:
    """Command, start, wall time, init and loss of the whole reproduction, for the facts table."""
    return {
        "command": meta.get("command", ""),
        "started": str(meta.get("started", "")).replace("T", " "),
        "wall time": wall_text(meta),
        "arithmetic limit": (f"{format_seconds(num(meta['arithmetic_seconds']))}: {meta.get('model_steps', 0):,} model-steps and "
                             f"{meta.get('evaluations', 0):,} dense evaluations at {meta.get('peak_gflops')} GFLOP/s, "
                             + (f"the fp32 matmul peak of the machine that sent the runs to the Ray cluster at {meta['cluster']}, "
                                "not the cluster's" if meta.get("cluster") else "this machine's fp32 matmul peak")
                             if meta.get("arithmetic_seconds") else "not measured"),
        "early stop": meta.get("early_stop", ""),
        "init": meta.get("init", ""),
        "loss": meta.get("loss", ""),
    }


def wall_text(meta: dict) -> str:
    """The reproduction's wall time beside its arithmetic limit; in the report of one of several variants, which
    trained together, said to be the time of them all."""
    together = meta.get("variants_together") or 0
    return (format_seconds(num(meta.get("wall_seconds"))) + times_limit(meta)
            + (f", all {together} variants trained together" if together > 1 else ""))


def times_limit(meta: dict) -> str:
    """' (3.1x the arithmetic limit)' where both are known, else ''."""
    wall, limit = num(meta.get("wall_seconds")), num(meta.get("arithmetic_seconds"))
    return f" ({wall / limit:.1f}x the arithmetic limit)" if limit and limit > 0 and wall == wall else ""


def _count(n: int) -> str:
    return _WORDS[n] if 0 <= n < len(_WORDS) else f"{n:,}"


def intro(meta: dict, n_presets: int, n_findings: int) -> str:
    """The paragraph that says what the experiment is (plain text)."""
    seeds = meta.get("seeds", [])
    seed_text = f"{_count(len(seeds))} seed{'s' if len(seeds) != 1 else ''} ({', '.join(str(s) for s in seeds)})"
    majority = num(meta.get("majority_rate"))
    loss = str(meta.get("loss", "")).replace("_", "-")
    text = (
        f"In the OVERFIT experiment a small multilayer perceptron learns one black-and-white picture, "
        f"{meta.get('target', 'a target')} at {meta.get('width', '?')} × {meta.get('height', '?')} pixels: "
        f"it maps the coordinates of a pixel to the probability that the pixel is ink or background, and is "
        f"trained on random batches of coordinates with the {loss} loss. Every {meta.get('eval_every', 0):,} steps "
        f"it is evaluated on every pixel (dense accuracy and IoU of the ink). {_count(n_presets).capitalize()} presets vary the "
        f"activation function, the scaling of the input coordinates and batch normalisation; each was trained "
        f"for {meta.get('steps', 0):,} steps with {seed_text}, and {_count(n_findings)} findings of the original "
        f"experiment are judged against the measurements below."
    )
    if not math.isnan(majority):
        text += f" Predicting the majority class everywhere already scores {100 * majority:.1f} %, so accuracy only means something above that."
    return text


def variants_intro(meta: dict, n_variants: int, n_findings: int) -> str:
    """The paragraph that says what a reproduction with several variants compares (plain text)."""
    seeds = meta.get("seeds", [])
    axes = meta.get("axes") or {}
    varied = "; ".join(f"{key} in {', '.join(str(v) for v in values)}" for key, values in axes.items())
    text = (
        f"The OVERFIT experiment's {_count(n_findings)} findings, judged under {_count(n_variants)} variants of the six presets "
        f"({varied}; every combination), on {meta.get('target', 'a target')} at {meta.get('width', '?')} × "
        f"{meta.get('height', '?')} pixels. Every variant trained each preset for {meta.get('steps', 0):,} steps with "
        f"{_count(len(seeds))} seed{'s' if len(seeds) != 1 else ''} ({', '.join(str(s) for s in seeds)}), all runs at once."
    )
    majority = num(meta.get("majority_rate"))
    if not math.isnan(majority):
        text += f" Predicting the majority class everywhere already scores {100 * majority:.1f} %."
    return text
