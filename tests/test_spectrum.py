"""Tests for the spectral band errors against pictures whose spectrum is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from overfit.spectrum import N_BANDS, BandAnalyzer, band_edges, band_errors, first_below, radial_frequency

H, W = 64, 96


def cosine(fy: float, fx: float) -> np.ndarray:
    """cos(2 pi (fy y + fx x)) sampled on the grid: all its energy sits at radius sqrt(fy^2 + fx^2)."""
    y, x = np.mgrid[0:H, 0:W]
    return np.cos(2 * np.pi * (fy * y + fx * x))


def band_of(radius: float, edges: np.ndarray) -> int:
    return int(np.clip(np.searchsorted(edges, radius, side="left") - 1, 0, len(edges) - 2))


def test_edges_are_log_spaced_from_two_cycles_to_the_corner():
    edges = band_edges(H, W)
    assert edges.shape == (N_BANDS + 1,)
    assert edges[0] == 0 and edges[1] == pytest.approx(2 / W) and edges[-1] == pytest.approx(math.sqrt(0.5))
    ratios = edges[2:] / edges[1:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert radial_frequency(H, W).max() == pytest.approx(math.sqrt(0.5))


def test_exact_prediction_has_zero_error_everywhere():
    target = (cosine(0, 3 / W) > 0).astype(float)
    errors = band_errors(target, target)
    np.testing.assert_allclose(errors[np.isfinite(errors)], 0, atol=1e-6)  # predictions are transformed in single precision


def test_low_pass_prediction_is_exact_in_low_bands_and_missing_in_high_ones():
    low, high = cosine(0, 2 / W) , cosine(24 / H, 0)  # radii 2/96 and 24/64 = 0.375
    edges = band_edges(H, W)
    b_low, b_high = band_of(2 / W, edges), band_of(24 / H, edges)
    assert b_low < b_high
    errors = band_errors(0.5 + 0.2 * low, 0.5 + 0.2 * low + 0.1 * high)
    assert errors[b_low] == pytest.approx(0, abs=1e-6)  # single-precision FFT
    assert errors[b_high] == pytest.approx(1.0, rel=1e-6)  # that band is entirely missing from the prediction
    # Bands where the target has no energy are undefined, not zero.
    others = [b for b in range(N_BANDS) if b not in (b_low, b_high)]
    assert np.isnan(errors[others]).all()


def test_half_amplitude_gives_half_error_and_dc_is_ignored():
    target = cosine(0, 5 / W)
    edges = band_edges(H, W)
    errors = BandAnalyzer(target).errors(0.5 * target + 7.0)  # a different mean changes nothing
    assert errors[band_of(5 / W, edges)] == pytest.approx(0.5, rel=1e-6)


def test_first_below():
    steps = [0, 100, 200, 300]
    errors = np.array([[0.9, 1.0, 1.0], [0.4, 0.8, 1.0], [0.2, 0.45, 1.0], [0.1, 0.3, 0.9]])
    assert first_below(steps, errors, 0.5) == [100, 200, None]


def _full_spectrum_errors(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The definition, computed the slow way: the full double-precision DFT of each channel, summed per band."""
    h, w = target.shape[:2]
    edges = band_edges(h, w)
    index = np.clip(np.searchsorted(edges, radial_frequency(h, w), side="left") - 1, 0, N_BANDS - 1)
    index[0, 0] = -1
    p = prediction.reshape(h, w, -1).astype(np.float64)
    t = target.reshape(h, w, -1).astype(np.float64)
    diff = np.abs(np.fft.fft2(p, axes=(0, 1)) - np.fft.fft2(t, axes=(0, 1))).sum(axis=2)
    energy = np.abs(np.fft.fft2(t, axes=(0, 1))).sum(axis=2)
    keep = index >= 0
    return np.bincount(index[keep], diff[keep], N_BANDS) / np.bincount(index[keep], energy[keep], N_BANDS)


@pytest.mark.parametrize("shape", [(30, 40), (31, 41), (24, 50, 3)])
def test_the_half_spectrum_gives_the_full_spectrum_band_errors(shape):
    rng = np.random.default_rng(0)
    target = (rng.random(shape) > 0.5).astype(np.float64)
    prediction = np.clip(target + rng.normal(0, 0.3, shape), 0, 1)
    np.testing.assert_allclose(BandAnalyzer(target).errors(prediction), _full_spectrum_errors(prediction, target), rtol=1e-4)
