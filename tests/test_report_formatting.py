"""Tests for overfit.report.formatting: how numbers, durations and colours read in the report."""

from __future__ import annotations

import math

import pytest

from overfit.report import formatting


@pytest.mark.parametrize(("value", "expected"), [(3, 3.0), (2.5, 2.5), (None, math.nan), ("1", math.nan), (True, math.nan), (math.inf, math.nan)])
def test_num(value, expected):
    got = formatting.num(value)
    assert (math.isnan(got) and math.isnan(expected)) or got == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "—"), (True, "yes"), (False, "no"), (12000, "12,000"), (12000.0, "12,000"), (0.95, "0.95"), (0.123456, "0.1235"), (math.nan, "nan"), ("x", "x")],
)
def test_format_value(value, text):
    assert formatting.format_value(value) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(math.nan, "—"), (8.24, "8.2 s"), (42.4, "42 s"), (185, "3 min 05 s"), (3725, "1 h 02 min")],
)
def test_format_seconds(seconds, text):
    assert formatting.format_seconds(seconds) == text


def test_mean_spread_and_wall_time():
    assert formatting.mean_spread({"mean": 0.98123, "spread": 0.0005}, 100, 2, " %") == "98.12 ± 0.05 %"
    assert formatting.mean_spread({"mean": 0.9, "spread": None}, 1, 3) == "0.900"
    assert formatting.mean_spread(None, 1, 3) == "—"
    # The spread shows only when it is at least 5 % of the mean and at least a second.
    assert formatting.wall_time({"mean": 100.0, "spread": 10.0}) == "1 min 40 s ± 10 s"
    assert formatting.wall_time({"mean": 100.0, "spread": 2.0}) == "1 min 40 s"
    assert formatting.wall_time({"mean": 10.5, "spread": 0.5}) == "10 s"


def test_pct_label_and_step_keys():
    assert formatting.pct_label("0.95") == "95 %"
    assert formatting.pct_label("best") == "best"
    table = [{"steps_to": {"0.9": {}, "0.95": {}, "0.99": {}}}]
    assert formatting.step_keys(table) == ["0.9", "0.95", "0.99"]
    assert formatting.step_keys([]) == []


def test_preset_colors_cycle_and_hex_rgb():
    names = [f"p{i}" for i in range(8)]
    colors = formatting.preset_colors(names)
    assert list(colors) == names
    assert colors["p0"] == colors["p6"] == formatting.PRESET_COLORS[0]
    assert formatting.hex_rgb("#1f77b4") == (0x1F, 0x77, 0xB4)


def test_seed0_and_variant_verdict():
    preset = {"runs": [{"seed": 1}, {"seed": 0, "status": "done"}]}
    assert formatting.seed0(preset) == {"seed": 0, "status": "done"}
    assert formatting.seed0({"runs": [{"seed": 4}]}) == {"seed": 4}
    assert formatting.seed0({}) == {}
    variant = {"verdicts": {"1": "PASS", 2: "FAIL"}}
    assert formatting.variant_verdict(variant, 1) == "PASS"  # JSON keys are strings
    assert formatting.variant_verdict(variant, 2) == "FAIL"
    assert formatting.variant_verdict(variant, 3) is None


def test_outcome_words():
    assert formatting.outcome_name({"seed": 3, "holds": True}) == "seed 3"
    assert formatting.outcome_name({"run": "cos_1-s2", "holds": None}) == "cos_1-s2"
    assert [formatting.outcome_word({"holds": h}) for h in (True, False, None)] == ["holds", "does not hold", "cannot decide"]
    assert formatting.outcome_unit({"share": {"unit": "runs"}}) == "run"
    assert formatting.outcome_unit({}) == "seed"  # older reports: per seed


def test_the_arithmetic_limit_names_whose_peak_it_is_and_a_variants_wall_time_says_it_is_of_all():
    meta = {"arithmetic_seconds": 2.0, "model_steps": 10, "evaluations": 2, "peak_gflops": 100, "wall_seconds": 5.0}
    assert formatting.run_facts(meta)["arithmetic limit"].endswith("at 100 GFLOP/s, this machine's fp32 matmul peak")
    on_cluster = formatting.run_facts({**meta, "cluster": "10.0.0.1:6379"})["arithmetic limit"]
    assert on_cluster.endswith("of the machine that sent the runs to the Ray cluster at 10.0.0.1:6379, not the cluster's")
    assert formatting.wall_text(meta) == formatting.wall_text({**meta, "variants_together": 1}) == "5.0 s (2.5x the arithmetic limit)"
    assert formatting.wall_text({**meta, "variants_together": 3}).endswith(", all 3 variants trained together")
