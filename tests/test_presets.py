"""Tests for overfit.presets: the original experiment's six configurations and the lookup by name."""

from __future__ import annotations

import dataclasses

import pytest

from overfit.config import ModelConfig, RunConfig
from overfit.errors import OverfitError
from overfit.presets import BASE, DEFAULT_PRESET, PRESETS, UnknownPresetError, get_preset

# name -> the model fields that differ from ModelConfig() (the original recipe).
EXPECTED = {
    "relu_raw": {"activation": "relu", "input_range": None, "batchnorm": False},
    "relu_1": {"activation": "relu", "input_range": 1.0, "batchnorm": False},
    "tanh_1": {"activation": "tanh", "input_range": 1.0, "batchnorm": False},
    "cos_1": {"activation": "cos", "input_range": 1.0, "batchnorm": False},
    "cos_3": {"activation": "cos", "input_range": 3.0, "batchnorm": False},
    "bn_relu": {"activation": "relu", "input_range": None, "batchnorm": True},
}


def test_the_six_presets_exist_in_order_then_the_modern_ones():
    assert list(PRESETS) == [*EXPECTED, "fourier", "siren", "grid", "fast"]


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_model_fields(name):
    cfg = get_preset(name)
    assert isinstance(cfg, RunConfig)
    for field, value in EXPECTED[name].items():
        assert getattr(cfg.model, field) == value, field
    assert cfg.preset == name
    assert PRESETS[name].config is cfg


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_other_fields_equal_the_base_recipe(name):
    cfg = get_preset(name)
    # Model: only the expected fields differ from the original recipe.
    assert dataclasses.replace(cfg.model, **{k: getattr(ModelConfig(), k) for k in EXPECTED[name]}) == ModelConfig()
    assert cfg.model.hidden == (64, 256, 64)
    assert cfg.model.init == "original"
    # Everything outside the model (and the label) is the base recipe.
    assert dataclasses.replace(cfg, preset=BASE.preset, model=BASE.model) == BASE
    assert (cfg.optim.lr, cfg.optim.batch_size, cfg.schedule.steps, cfg.loss_name) == (1e-4, 1024, 100_000, "cross_entropy")


@pytest.mark.parametrize("name", list(EXPECTED))
def test_preset_has_a_one_line_description(name):
    description = PRESETS[name].description
    assert isinstance(description, str)
    assert description.strip() != ""
    assert "\n" not in description


def test_descriptions_are_distinct():
    assert len({p.description for p in PRESETS.values()}) == len(PRESETS)


def test_default_preset_is_the_original_recipe():
    assert DEFAULT_PRESET == "relu_1"
    assert BASE == RunConfig()
    assert get_preset(DEFAULT_PRESET) == RunConfig()


@pytest.mark.parametrize("name", list(EXPECTED))
def test_presets_survive_the_json_round_trip(name):
    cfg = get_preset(name)
    assert RunConfig.from_json(cfg.to_json()) == cfg


def test_presets_combine_with_overrides():
    cfg = get_preset("cos_3").with_overrides({"model.activation": "tanh"})
    assert (cfg.model.activation, cfg.model.input_range, cfg.preset) == ("tanh", 3.0, "cos_3")


def test_unknown_preset_is_refused_listing_the_known_ones():
    with pytest.raises(UnknownPresetError) as info:
        get_preset("cos_9")
    message = str(info.value)
    assert message.startswith("unknown preset 'cos_9'")
    for name in EXPECTED:
        assert name in message
    assert isinstance(info.value, OverfitError)
    assert isinstance(info.value, KeyError)
