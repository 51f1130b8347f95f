"""Tests for overfit.images: the one [0, 1] -> uint8 rounding, and PNGs written and read back."""

from __future__ import annotations

import os

import numpy as np
import pytest

from overfit import images


# ----------------------------------------------------------------------------- to_uint8


def test_to_uint8_values_and_dtype():
    values = np.array([[0.0, 1.0, 0.5, np.nan], [-1.0, 2.0, np.inf, 0.25]])
    gray = images.to_uint8(values)
    assert gray.dtype == np.uint8
    assert gray.shape == (2, 4)
    # 0.5 * 255 = 127.5 rounds half up; NaN is undecided (0.5); 0.25 * 255 = 63.75 -> 64;
    # -1 and 2 are clipped, +inf counts as 1.
    np.testing.assert_array_equal(gray, [[0, 255, 128, 128], [0, 255, 255, 64]])


def test_to_uint8_matches_round_on_random_values():
    values = np.random.default_rng(0).random((7, 9)).astype(np.float32)
    np.testing.assert_array_equal(images.to_uint8(values), np.round(values.astype(np.float64) * 255))


def test_to_uint8_rounds_half_up_at_every_level():
    # k + 0.5 steps: numpy's round would go to even (0.5 -> 0, 2.5 -> 2); half up goes to k + 1.
    k = np.arange(255)
    np.testing.assert_array_equal(images.to_uint8((k + 0.5) / 255.0), k + 1)
    np.testing.assert_array_equal(images.to_uint8(k / 255.0), k)


@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (3, 4, 3), (2, 3, 4, 1)])
def test_to_uint8_keeps_any_shape(shape):
    values = np.random.default_rng(1).uniform(-0.5, 1.5, size=shape)
    out = images.to_uint8(values)
    assert out.shape == shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.floor(np.clip(values, 0, 1) * 255 + 0.5))


def test_to_uint8_accepts_lists_and_negative_infinity():
    np.testing.assert_array_equal(images.to_uint8([-np.inf, 0.0, 1.0]), [0, 0, 255])


# ----------------------------------------------------------------------------- PNG


@pytest.mark.parametrize("color", [False, True])
def test_png_round_trip(tmp_path, color):
    shape = (17, 23, 3) if color else (17, 23)
    picture = np.random.default_rng(2).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path / "picture.png"
    images.save_png(picture, path)
    back = images.read_png(path, color=color)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, picture)  # PNG is lossless
    assert os.listdir(tmp_path) == ["picture.png"]  # written atomically: no temporary left


def test_png_bytes_is_a_png_and_read_png_converts_gray_to_rgb(tmp_path):
    gray = np.array([[0, 128], [200, 255]], dtype=np.uint8)
    data = images.png_bytes(gray)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "g.png").write_bytes(data)
    rgb = images.read_png(tmp_path / "g.png", color=True)
    assert rgb.shape == (2, 2, 3)
    for c in range(3):
        np.testing.assert_array_equal(rgb[..., c], gray)
