"""Tests for overfit.captions: the caption band's size, its text layout and the captioned frame."""

from __future__ import annotations

import numpy as np
import pytest

from overfit import captions

CAPTION = "step 12,000   accuracy 95.3 %"


def test_annotate_shape_keeps_frame_and_draws_text():
    gray = np.random.default_rng(1).integers(0, 256, size=(30, 200), dtype=np.uint8)
    out = captions.annotate(gray, CAPTION)
    band = captions.band_height(200)
    assert out.dtype == np.uint8
    assert out.shape == (30 + band, 200, 3)
    # The frame is copied unchanged below the band, in all three channels.
    for c in range(3):
        np.testing.assert_array_equal(out[band:, :, c], gray)
    # Dark band with light text: the corner is the band colour, some pixels are bright.
    header = out[:band]
    assert tuple(header[0, 0]) == captions.BAND_BG
    assert header.max() >= 200
    assert (header.max(axis=2) >= 128).sum() > 50  # more than a speck: glyphs were drawn


def test_annotate_is_deterministic_and_text_dependent():
    gray = np.full((20, 300), 200, dtype=np.uint8)
    a = captions.annotate(gray, CAPTION)
    np.testing.assert_array_equal(a, captions.annotate(gray, CAPTION))
    b = captions.annotate(gray, "step 13,000   accuracy 95.3 %")
    assert a.shape == b.shape  # band height depends on the width only: frames stack into a video
    assert not np.array_equal(a, b)


def test_band_height_scales_with_width_and_stays_block_aligned():
    assert captions.band_height(1000) == 48  # 4.5 % of 1000, rounded up to a multiple of 8
    assert captions.band_height(64) == captions.MIN_BAND
    for w in (16, 64, 333, 1000, 4000):
        assert captions.band_height(w) % 8 == 0
    assert captions.band_height(4000) > captions.band_height(1000)


@pytest.mark.parametrize("width", [16, 64])
def test_annotate_tiny_frames_keep_width(width):
    gray = np.zeros((8, width), dtype=np.uint8)
    out = captions.annotate(gray, CAPTION + "   some very long extra field")
    assert out.shape == (8 + captions.band_height(width), width, 3)
    assert out[: captions.band_height(width)].max() > 100  # some text is still visible


def test_annotate_accepts_rgb_and_rejects_other_shapes():
    rgb = np.random.default_rng(2).integers(0, 256, size=(10, 100, 3), dtype=np.uint8)
    out = captions.annotate(rgb, "hello")
    np.testing.assert_array_equal(out[captions.band_height(100) :], rgb)
    with pytest.raises(ValueError):
        captions.annotate(np.zeros((10, 100, 4), dtype=np.uint8), "x")
    with pytest.raises(ValueError):
        captions.annotate(np.zeros((10, 100), dtype=np.float32), "x")
