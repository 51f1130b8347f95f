"""Spectral bias, measured: how well each frequency band of the picture has been learned.

The prediction (probability of background on the dense grid for ink-or-background
pictures, the pixel values otherwise) and the target (0/1 labels, or its values) are
compared in the 2D Fourier domain; a colour picture's channels add up. Frequencies are grouped into radial
bands, log-spaced because a picture's energy falls off roughly as a power of the
frequency; a band's relative error is

    sum over the band of |F(pred) - F(target)|  /  sum over the band of |F(target)|

0 means the band is reproduced exactly, 1 means it is missing altogether. The mean
(the DC term) is left out: it says how much ink there is, not at what scale.

`BandErrors` is the probe (`overfit.probes`) that records these at every evaluation, as "bands".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .images import to_uint8
from .probes import Probe

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
    """Per-band relative spectral error of predictions against one target, (H, W) or (H, W, C).

    Pictures are real, so |F| is symmetric and the half spectrum of `rfft2` holds every
    coefficient once or, for columns that stand for a mirrored pair, twice: each is
    weighted accordingly, which gives the full spectrum's band sums at about a quarter
    of the cost (predictions in single precision; an evaluation records these every time).
    """

    def __init__(self, target: np.ndarray, n_bands: int = N_BANDS) -> None:
        height, width = target.shape[:2]
        self.edges = band_edges(height, width, n_bands)
        half = width // 2 + 1
        radius = radial_frequency(height, width)[:, :half]
        # Band index of every coefficient; the top edge is inclusive, DC is excluded (-1).
        index = np.clip(np.searchsorted(self.edges, radius, side="left") - 1, 0, n_bands - 1)
        index[0, 0] = -1
        # Column j of the half spectrum also stands for column W - j, except column 0 and (W even) the Nyquist column.
        pairs = np.full(half, 2.0)
        pairs[0] = 1.0
        if width % 2 == 0:
            pairs[-1] = 1.0
        # DC (index -1) gets weight 0 and is counted in band 0, where it adds nothing.
        self.weight = np.broadcast_to(pairs, (height, half)).reshape(-1) * (index.reshape(-1) >= 0)
        self.index = np.maximum(index.reshape(-1), 0)
        self.n_bands = n_bands
        self.shape = target.shape
        # The target's energy once in double precision, so a band it leaves empty is exactly empty; its
        # coefficients then in single precision, like the predictions' they are compared with.
        target_fft = self._fft(target, np.float64)
        self.target_energy = self._per_band(np.abs(target_fft))
        self.target_fft = target_fft.astype(np.complex64)

    def _fft(self, picture: np.ndarray, dtype: type = np.float32) -> np.ndarray:
        """The half 2D DFT of each channel, as (H * (W // 2 + 1), C).

        Through torch's FFT (imported here, not with the module): several times faster than
        numpy's on a 1000 x 300 picture, which matters at every evaluation.
        """
        import torch

        if picture.shape != self.shape:
            raise ValueError(f"prediction of shape {picture.shape} against a target of shape {self.shape}")
        planes = torch.from_numpy(np.ascontiguousarray(picture, dtype=dtype).reshape(*self.shape[:2], -1))
        spectrum = torch.fft.rfft2(planes.permute(2, 0, 1))  # (C, H, W // 2 + 1)
        return spectrum.permute(1, 2, 0).reshape(-1, planes.shape[2]).numpy()

    def _per_band(self, values: np.ndarray) -> np.ndarray:
        """Sums over each band (and over channels) of values (H * (W // 2 + 1), C), mirrored columns counted twice."""
        per_coefficient = values[:, 0] if values.shape[1] == 1 else values.sum(axis=1)
        return np.bincount(self.index, weights=per_coefficient * self.weight, minlength=self.n_bands)

    def errors(self, prediction: np.ndarray) -> np.ndarray:
        """(n_bands,) relative error of `prediction` (the target's shape); NaN for a band where the target has no energy."""
        diff = np.abs(self._fft(prediction) - self.target_fft)
        num = self._per_band(diff)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.target_energy > 1e-9 * max(self.target_energy.max(), 1e-300), num / self.target_energy, np.nan)


class BandErrors(Probe):
    """Probe: record["bands"] = each band's relative error of the dense prediction (None where the target has no
    energy), as the frame on disk shows it (rounded to 8 bits), so live values equal those a report reads back."""

    def __init__(self) -> None:
        self._analyzer: BandAnalyzer | None = None  # built at the first evaluation, from the run's target

    def after_dense(self, trainer: Any, record: dict[str, Any], prediction: np.ndarray) -> None:
        if self._analyzer is None:
            self._analyzer = BandAnalyzer(trainer.mode.target_picture(trainer.target).astype(np.float64))
        shown = to_uint8(prediction).astype(np.float32) / 255.0  # the frame written to the run folder
        record["bands"] = [float(e) if math.isfinite(e) else None for e in self._analyzer.errors(shown)]


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
