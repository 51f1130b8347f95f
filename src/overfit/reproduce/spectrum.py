"""Spectral bias, measured: how well each frequency band of the picture has been learned.

The prediction (probability of background on the dense grid) and the target (0/1
labels) are compared in the 2D Fourier domain. Frequencies are grouped into radial
bands, log-spaced because a picture's energy falls off roughly as a power of the
frequency; a band's relative error is

    sum over the band of |F(pred) - F(target)|  /  sum over the band of |F(target)|

0 means the band is reproduced exactly, 1 means it is missing altogether. The mean
(the DC term) is left out: it says how much ink there is, not at what scale.
"""

from __future__ import annotations

import math

import numpy as np

N_BANDS = 8


def radial_frequency(height: int, width: int) -> np.ndarray:
    """|f| in cycles per pixel for every coefficient of an (H, W) DFT; 0 at [0, 0], at most sqrt(0.5)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    return np.sqrt(fy**2 + fx**2)


def band_edges(height: int, width: int, n_bands: int = N_BANDS) -> np.ndarray:
    """n_bands + 1 edges in cycles per pixel: [0, then log-spaced from 2 cycles per picture to the corner].

    The first band holds everything up to two cycles across the longer side (the
    picture's coarse layout); the last ends at sqrt(0.5), the highest radial frequency.
    """
    lowest = 2.0 / max(height, width)
    return np.concatenate([[0.0], np.geomspace(lowest, math.sqrt(0.5), n_bands)])


class BandAnalyzer:
    """Per-band relative spectral error of predictions against one target."""

    def __init__(self, target: np.ndarray, n_bands: int = N_BANDS) -> None:
        height, width = target.shape
        self.edges = band_edges(height, width, n_bands)
        radius = radial_frequency(height, width)
        # Band index of every coefficient; the top edge is inclusive, DC is excluded (-1).
        index = np.clip(np.searchsorted(self.edges, radius, side="left") - 1, 0, n_bands - 1)
        index[0, 0] = -1
        self.index = index.reshape(-1)
        self.n_bands = n_bands
        self.target_fft = np.fft.fft2(target.astype(np.float64)).reshape(-1)
        self.target_energy = self._per_band(np.abs(self.target_fft))

    def _per_band(self, values: np.ndarray) -> np.ndarray:
        keep = self.index >= 0
        return np.bincount(self.index[keep], weights=values[keep], minlength=self.n_bands)

    def errors(self, prediction: np.ndarray) -> np.ndarray:
        """(n_bands,) relative error of `prediction` (H, W); NaN for a band where the target has no energy."""
        diff = np.abs(np.fft.fft2(prediction.astype(np.float64)).reshape(-1) - self.target_fft)
        num = self._per_band(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.target_energy > 1e-9 * max(self.target_energy.max(), 1e-300), num / self.target_energy, np.nan)


def band_errors(prediction: np.ndarray, target: np.ndarray, n_bands: int = N_BANDS) -> np.ndarray:
    """One-off form of `BandAnalyzer(target).errors(prediction)`."""
    return BandAnalyzer(target, n_bands).errors(prediction)


def first_below(steps: list[int], errors: np.ndarray, threshold: float) -> list[int | None]:
    """For each band, the first step whose error is below `threshold` (None if never). errors: (n_steps, n_bands)."""
    out: list[int | None] = []
    for band in range(errors.shape[1]):
        below = np.nonzero(errors[:, band] < threshold)[0]
        out.append(int(steps[below[0]]) if below.size else None)
    return out
