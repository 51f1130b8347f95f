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


# -- the modern presets: every one learns every mode ------------------------------------------------

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from overfit.presets import MODERN_PRESETS  # noqa: E402
from overfit.training import train  # noqa: E402


@pytest.fixture(scope="module")
def colour_picture(tmp_path_factory) -> str:
    """A small colour picture: smooth gradients plus a sharp-edged disc."""
    h, w = 32, 48
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x / (w - 1), y / (h - 1), 0.5 + 0.5 * np.sin(x / 5.0)], axis=2)
    rgb[(y - 16) ** 2 + (x - 30) ** 2 < 64] = (1.0, 0.1, 0.1)
    path = tmp_path_factory.mktemp("pictures") / "colour.png"
    Image.fromarray((rgb * 255).round().astype(np.uint8)).save(path)
    return str(path)


def test_modern_presets_are_listed_with_descriptions():
    assert MODERN_PRESETS == ("fourier", "siren", "grid", "fast")
    for name in MODERN_PRESETS:
        assert PRESETS[name].description and PRESETS[name].config.preset == name


@pytest.mark.parametrize("mode", ["binary", "gray", "rgb"])
@pytest.mark.parametrize("name", ["fourier", "siren", "grid", "fast"])
def test_modern_preset_learns(name, mode, colour_picture):
    over = {"data.mode": mode, "schedule.steps": 60, "schedule.eval_every": 60, "schedule.log_every": 20, "optim.batch_size": 1024}
    if mode == "rgb":
        over["data.image"] = colour_picture
    else:
        over.update({"data.text": "OV", "data.width": 48, "data.height": 32})
    if name in ("fourier", "siren"):
        # Narrower and with more steps and a faster rate than the preset: the test is about learning on a
        # 48 x 32 picture in a second, not about the preset's capacity.
        over.update({"model.hidden": "64,64", "schedule.steps": 150, "schedule.eval_every": 150, "optim.lr": 1e-3})
    cfg = get_preset(name).with_overrides(over)
    result = train(cfg)
    first, last = result.history[0], result.history[-1]
    assert last["step"] == cfg.schedule.steps
    if mode == "binary":
        assert last["dense_acc"] > max(0.9, result.target.majority_rate + 0.05), last
    else:
        assert last["dense_psnr"] > first["dense_psnr"] + 5.0, (first, last)
        assert 0.0 <= last["dense_ssim"] <= 1.0
