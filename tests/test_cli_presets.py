"""Tests for `overfit presets`: every preset listed once, in its group, the default marked."""

from __future__ import annotations

from click.testing import CliRunner

from overfit.cli import main
from overfit.presets import DEFAULT_PRESET, MODERN_PRESETS, ORIGINAL_PRESETS, PRESETS


def test_presets_lists_every_preset_in_its_group():
    result = CliRunner().invoke(main, ["presets"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    for name in ("relu_raw", "relu_1", "tanh_1", "cos_1", "cos_3", "bn_relu", "fourier", "siren", "grid", "fast"):
        assert any(line[2:].startswith(name + " ") for line in lines), name
    original = lines.index("The original experiment (binary pictures):")
    modern = lines.index("Modern encodings (any --mode: binary, gray, rgb):")
    assert original < modern
    assert lines[-1] == "* is the default. Run one with: overfit train PRESET"
    rows = [line for line in lines[:-1] if line[:2] in ("  ", "* ")]
    listed = [row[2:].split()[0] for row in rows]
    assert listed == [*ORIGINAL_PRESETS, *MODERN_PRESETS] and sorted(listed) == sorted(PRESETS)
    assert [row[2:].split()[0] for row in rows if row.startswith("* ")] == [DEFAULT_PRESET]
    assert f"  {PRESETS['fast'].description}" in next(line for line in lines if line[2:].startswith("fast "))
