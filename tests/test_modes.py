"""Tests for overfit.modes: the registry's numbers, the output heads, captions, samplers and metric dispatch."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from overfit import metrics, modes
from overfit.losses import LOSSES
from overfit.modes import MODES, Classification, Regression, get_mode
from overfit.sampling import Sampler, ValueSampler
from overfit.targets import make_target

# -- the registry ------------------------------------------------------------------------


def test_the_three_modes_and_their_numbers():
    assert list(MODES) == ["binary", "gray", "rgb"]
    table = {name: (m.out_channels, m.picture_channels, m.losses, m.default_loss, m.headline, m.color)
             for name, m in MODES.items()}
    assert table == {
        "binary": (2, 1, ("cross_entropy", "double_softmax"), "cross_entropy", "dense_acc", False),
        "gray": (1, 1, ("mse",), "mse", "dense_psnr", False),
        "rgb": (3, 3, ("mse",), "mse", "dense_psnr", True),
    }
    assert isinstance(MODES["binary"], Classification)
    assert isinstance(MODES["gray"], Regression) and isinstance(MODES["rgb"], Regression)
    for name, mode in MODES.items():
        assert mode.name == name
        assert set(mode.losses) <= set(LOSSES)


def test_get_mode_returns_the_registered_object_and_refuses_unknown_names():
    for name, mode in MODES.items():
        assert get_mode(name) is mode
    with pytest.raises(KeyError):
        get_mode("cmyk")


def test_importing_modes_costs_no_torch_import():
    code = "import sys, overfit.modes; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


# -- output heads ------------------------------------------------------------------------


def test_binary_display_is_the_softmax_probability_of_background():
    logits = [(0.0, 0.0), (2.0, -1.0), (-3.0, 4.5), (100.0, -100.0), (0.25, 0.75)]
    shown = MODES["binary"].display(torch.tensor(logits, dtype=torch.float32))
    assert shown.shape == (5, 1) and shown.dtype == torch.float32
    for (ink, bg), value in zip(logits, shown[:, 0].tolist()):
        expected = math.exp(bg) / (math.exp(ink) + math.exp(bg))  # class 1 is background
        assert value == pytest.approx(expected, rel=1e-6, abs=1e-30)


def test_binary_display_accepts_half_precision_logits():
    shown = MODES["binary"].display(torch.tensor([[1.0, 3.0]], dtype=torch.float16))
    assert shown.dtype == torch.float32
    assert float(shown) == pytest.approx(math.exp(3) / (math.exp(1) + math.exp(3)), rel=1e-3)


@pytest.mark.parametrize("name, channels", [("gray", 1), ("rgb", 3)])
def test_regression_display_clamps_to_unit_range(name, channels):
    raw = torch.tensor([-0.5, 0.0, 0.3, 1.0, 1.7, -2.0, 0.999, 5.0, 0.5], dtype=torch.float32)[: 3 * channels]
    out = raw.reshape(-1, channels)
    shown = MODES[name].display(out)
    assert shown.shape == out.shape
    expected = [min(max(v, 0.0), 1.0) for v in raw.tolist()]
    assert shown.reshape(-1).tolist() == expected


# -- captions and summaries ---------------------------------------------------------------


def test_captions_for_known_records():
    binary, gray, rgb = MODES["binary"], MODES["gray"], MODES["rgb"]
    assert binary.caption("relu_1", {"step": 12345, "dense_acc": 0.9512}) == "relu_1   step 12,345   accuracy 95.1 %"
    assert binary.caption("cos_3", {"step": 0, "dense_acc": 1.0}) == "cos_3   step 0   accuracy 100.0 %"
    assert gray.caption("siren", {"step": 1000, "dense_psnr": 25.456}) == "siren   step 1,000   PSNR 25.46 dB"
    assert rgb.caption("x", {"step": 2_000_000, "dense_psnr": 100.0}) == "x   step 2,000,000   PSNR 100.00 dB"
    assert binary.format_headline(0.5) == "50.0 %"
    assert gray.format_headline(7.0) == "7.00 dB"


def test_summaries_for_known_records():
    assert MODES["binary"].summary({"dense_acc": 0.95123, "dense_iou": 0.8}) == "dense accuracy 0.9512, ink IoU 0.8000"
    for name in ("gray", "rgb"):
        assert MODES[name].summary({"dense_psnr": 25.456, "dense_ssim": 0.9}) == "PSNR 25.46 dB, SSIM 0.9000"


def test_caption_needs_the_headline_of_its_mode():
    with pytest.raises(KeyError):
        MODES["gray"].caption("p", {"step": 1, "dense_acc": 0.5})


# -- targets and samplers -----------------------------------------------------------------

# A 3 x 4 gray picture: two ink pixels (<= 128), the rest background.
GRAY = np.array([[0, 255, 200, 129], [128, 255, 255, 255], [255, 255, 64, 255]], dtype=np.uint8)


def test_binary_target_tensor_sampler_and_picture():
    mode = MODES["binary"]
    target = make_target(GRAY, "tiny", "binary")
    t = mode.target_tensor(target, "cpu")
    assert t.shape == (3, 4) and t.dtype == torch.uint8
    assert t.tolist() == (GRAY > 128).astype(int).tolist()
    sampler = mode.sampler(t)
    assert isinstance(sampler, Sampler)
    yx, labels = sampler.sample(50, 0, 0)
    assert yx.shape == (50, 2) and yx.dtype == torch.float32
    assert labels.shape == (50,) and labels.dtype == torch.int64
    assert set(labels.tolist()) <= {0, 1}
    assert float(yx[:, 0].min()) >= 0 and float(yx[:, 0].max()) <= 2 and float(yx[:, 1].max()) <= 3
    # The label is that of the nearest pixel; y runs bottom to top (coords' convention).
    rows, cols = 2 - yx[:, 0].round().long(), yx[:, 1].round().long()
    assert labels.tolist() == t[rows, cols].long().tolist()
    picture = mode.target_picture(target)
    assert picture is target.labels and picture.shape == (3, 4)


def test_gray_target_tensor_sampler_and_picture():
    mode = MODES["gray"]
    target = make_target(GRAY, "tiny", "gray")
    t = mode.target_tensor(target, "cpu")
    assert t.shape == (3, 4, 1) and t.dtype == torch.float32
    assert torch.equal(t[:, :, 0], torch.from_numpy(GRAY.astype(np.float32) / 255.0))
    sampler = mode.sampler(t)
    assert isinstance(sampler, ValueSampler)
    yx, values = sampler.sample(40, 1, 0)
    assert yx.shape == (40, 2) and values.shape == (40, 1) and values.dtype == torch.float32
    assert float(values.min()) >= 0.0 and float(values.max()) <= 1.0
    picture = mode.target_picture(target)
    assert picture.shape == (3, 4) and picture.dtype == np.float32
    assert np.array_equal(picture, GRAY / np.float32(255.0))


def test_rgb_target_tensor_sampler_and_picture():
    mode = MODES["rgb"]
    rgb = np.stack([GRAY, 255 - GRAY, np.full_like(GRAY, 7)], axis=2)
    target = make_target(rgb, "tiny", "rgb")
    t = mode.target_tensor(target, "cpu")
    assert t.shape == (3, 4, 3) and t.dtype == torch.float32
    assert torch.equal(t, torch.from_numpy(rgb.astype(np.float32) / 255.0))
    yx, values = mode.sampler(t).sample(30, 2, 0)
    assert yx.shape == (30, 2) and values.shape == (30, 3)
    # Each sample is the picture bilinearly interpolated at its coordinate (y up): a hand-written reference.
    pic = rgb.astype(np.float64) / 255.0
    for (y, x), value in zip(yx.tolist(), values.tolist()):
        row, col = 2 - y, x
        r0, c0 = min(int(row), 1), min(int(col), 2)
        fr, fc = row - r0, col - c0
        expected = ((1 - fr) * ((1 - fc) * pic[r0, c0] + fc * pic[r0, c0 + 1])
                    + fr * ((1 - fc) * pic[r0 + 1, c0] + fc * pic[r0 + 1, c0 + 1]))
        assert value == pytest.approx(expected.tolist(), abs=1e-5)
    assert mode.target_picture(target).shape == (3, 4, 3)


def test_samplers_are_reproducible_from_the_generator():
    t = MODES["binary"].target_tensor(make_target(GRAY, "tiny"), "cpu")
    a = MODES["binary"].sampler(t).sample(20, 5, 0)
    b = MODES["binary"].sampler(t).sample(20, 5, 0)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


# -- metric dispatch ----------------------------------------------------------------------


def _linear(out: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(2, out)


def test_binary_metrics_dispatch_to_the_classification_functions():
    mode = MODES["binary"]
    t = mode.target_tensor(make_target(GRAY, "tiny"), "cpu")
    model = _linear(2)
    yx, labels = mode.sampler(t).sample(64, 3, 0)
    loss = LOSSES["cross_entropy"]
    got = mode.batch_metrics(model, yx, labels, loss)
    assert got == metrics.batch_metrics(model, yx, labels, loss)
    assert set(got) == {"batch_acc", "batch_iou", "batch_loss", "batch_pred_bg"}
    dense, picture = mode.dense_metrics(model, t, loss)
    ref_dense, ref_picture = metrics.dense_metrics(model, t, loss)
    assert dense == ref_dense and np.array_equal(picture, ref_picture)
    assert set(dense) == {"dense_acc", "dense_iou", "dense_loss", "dense_pred_bg"}
    assert picture.shape == (3, 4) and picture.dtype == np.float32


def test_binary_metrics_pass_the_loss_through():
    mode = MODES["binary"]
    t = mode.target_tensor(make_target(GRAY, "tiny"), "cpu")
    model = _linear(2)
    a, _ = mode.dense_metrics(model, t, LOSSES["cross_entropy"])
    b, _ = mode.dense_metrics(model, t, LOSSES["double_softmax"])
    assert a["dense_acc"] == b["dense_acc"] and a["dense_loss"] != b["dense_loss"]


@pytest.mark.parametrize("name, channels", [("gray", 1), ("rgb", 3)])
def test_regression_metrics_dispatch_to_the_regression_functions(name, channels):
    mode = MODES[name]
    picture = GRAY if channels == 1 else np.stack([GRAY, 255 - GRAY, GRAY // 2], axis=2)
    t = mode.target_tensor(make_target(picture, "tiny", name), "cpu")
    model = _linear(channels, seed=4)
    yx, values = mode.sampler(t).sample(64, 3, 0)
    got = mode.batch_metrics(model, yx, values, LOSSES["mse"])
    assert got == metrics.regression_batch_metrics(model, yx, values)
    assert set(got) == {"batch_loss", "batch_psnr"}
    dense, shown = mode.dense_metrics(model, t, LOSSES["mse"])
    ref_dense, ref_shown = metrics.dense_regression_metrics(model, t)
    assert dense == ref_dense and np.array_equal(shown, ref_shown)
    assert set(dense) == {"dense_loss", "dense_psnr", "dense_ssim"}
    assert shown.shape == ((3, 4) if channels == 1 else (3, 4, 3))


# -- what each mode owns beyond the tensors -------------------------------------------------


def test_only_binary_finds_nothing_to_learn_in_a_picture_of_one_class():
    white, black = np.full((3, 4), 255, np.uint8), np.zeros((3, 4), np.uint8)
    assert MODES["binary"].nothing_to_learn(make_target(white, "w", "binary")) == "background (white)"
    assert MODES["binary"].nothing_to_learn(make_target(black, "b", "binary")) == "ink (black)"
    assert MODES["binary"].nothing_to_learn(make_target(GRAY, "g", "binary")) is None
    for name in ("gray", "rgb"):  # a flat picture is still a picture of values to fit
        assert MODES[name].nothing_to_learn(make_target(white, "w", name)) is None


def test_classes_and_memory_per_pixel_are_the_modes():
    assert MODES["binary"].classes == ("ink", "background") and MODES["gray"].classes == MODES["rgb"].classes == ()
    binary, gray, rgb = (MODES[n].memory for n in ("binary", "gray", "rgb"))
    # binary: gray levels + labels on the host, uint8 labels on the device; P(background) twice in float32 + a uint8 frame
    assert (binary.target, binary.dense, binary.held_out) == (3, 9, 0)
    # gray / rgb: float32 values on the host and the device; SSIM's float64 arrays dominate a dense evaluation
    assert (gray.target, rgb.target) == (2 + 8, 2 + 3 + 24)
    assert rgb.dense == 3 * gray.dense == 3 * (8 + 16 + modes.SSIM_ARRAYS * 8) and gray.held_out == 16
