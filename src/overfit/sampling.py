"""Infinite random minibatches of (coordinate, target), drawn on the training device; and held-out pixels.

As in the original experiment, coordinates are uniform over [0, H - 1] x [0, W - 1]
and, for binary pictures, the label is that of the nearest pixel (see `coords`).
For gray and colour pictures the target is the picture bilinearly interpolated at
the coordinate (as tiny-cuda-nn's image sample does), so the network learns a
continuous function instead of a staircase. Sampling uses a torch
generator on the same device as the model, so a step never waits for the host
and a run is reproducible from its seed.

With held-out pixels (`data.holdout`, a `Split`) the samplers draw from the training
pixels only, and no batch ever lands on, or takes a value from, a test pixel:

- binary: a training pixel uniformly, then a coordinate uniformly inside that pixel's
  cell (so its nearest pixel is the training pixel): the original distribution restricted
  to the training pixels;
- gray and rgb, `checkerboard`: coordinates uniform over the even lattice, values
  interpolated bilinearly between lattice points (the picture the lattice alone shows);
- gray and rgb, a random fraction: training pixel centres exactly (interpolating would
  mix in the held-out neighbours).
"""

from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
import torch

from .coords import bilinear_at, label_at
from .errors import ConfigError

CHECKERBOARD = "checkerboard"
NO_HOLDOUT = "none"


@dataclass(frozen=True)
class Split:
    """Which pixels train and which test: two disjoint (H, W) bool masks, row 0 on top (the picture as stored)."""

    kind: str
    """'checkerboard' or 'random'."""
    train: torch.Tensor
    test: torch.Tensor

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.train.shape[0]), int(self.train.shape[1])


def holdout_split(holdout: str, height: int, width: int, seed: int, device: torch.device | str = "cpu") -> Split | None:
    """The split `data.holdout` asks for on an H x W picture; None for 'none'.

    'checkerboard' (Tancik et al. 2020's image protocol): train on the pixels in an even
    row AND an even column of the picture as stored (`picture[::2, ::2]`), test on those in
    an odd row AND an odd column (`picture[1::2, 1::2]`); the other half of the pixels is
    in neither. A fraction f: round(f * H * W) pixels (at least one, and never all) drawn
    without replacement with numpy's generator seeded by `seed` test, all others train.
    """
    if holdout == NO_HOLDOUT:
        return None
    if holdout == CHECKERBOARD:
        if min(height, width) < 3:
            raise ConfigError(f"checkerboard needs a picture of at least 3 x 3 pixels (two lattice points a side), "
                              f"got {width} x {height}", field="data.holdout")
        rows, cols = torch.arange(height, device=device), torch.arange(width, device=device)
        even_r, even_c = rows % 2 == 0, cols % 2 == 0
        train = even_r[:, None] & even_c[None, :]
        test = ~even_r[:, None] & ~even_c[None, :]
        return Split(CHECKERBOARD, train, test)
    fraction = _fraction(holdout)
    n = height * width
    if n < 2:
        raise ConfigError(f"a {width} x {height} picture has too few pixels to hold some out", field="data.holdout")
    n_test = min(max(round(fraction * n), 1), n - 1)
    chosen = np.random.default_rng(seed).permutation(n)[:n_test]  # numpy: the same pixels on every device
    test = torch.zeros(n, dtype=torch.bool)
    test[torch.from_numpy(chosen)] = True
    test = test.reshape(height, width).to(device)
    return Split("random", ~test, test)


def _fraction(holdout: str) -> float:
    """The share of pixels a random split holds out (the config has checked it; this module reads no config)."""
    try:
        fraction = float(holdout)
    except ValueError:
        fraction = math.nan
    if not 0.0 < fraction < 1.0:  # nan fails too
        raise ConfigError(f"must be 'none', 'checkerboard' or a fraction of pixels in (0, 1), got {holdout!r}", field="data.holdout")
    return fraction


class _TrainingPixels:
    """Uniform draws of training pixels (row, column) of a split, as stored."""

    def __init__(self, split: Split) -> None:
        self.split = split
        height, width = split.shape
        self.lattice = split.kind == CHECKERBOARD
        if self.lattice:  # rows and columns 0, 2, 4, ...: no index list needed
            self.size = torch.tensor([(height + 1) // 2, (width + 1) // 2], device=split.train.device)
        else:
            self.flat = split.train.reshape(-1).nonzero().squeeze(1)  # (n_train,) flat indices
        self.width = width

    def draw(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        device = self.split.train.device
        if self.lattice:
            u = torch.rand(n, 2, generator=generator, device=device)
            ij = (u * self.size).long().minimum(self.size - 1)
            return 2 * ij[:, 0], 2 * ij[:, 1]
        pick = torch.randint(0, self.flat.numel(), (n,), generator=generator, device=device)
        index = self.flat[pick]
        return index // self.width, index % self.width


def _centres(rows: torch.Tensor, cols: torch.Tensor, height: int) -> torch.Tensor:
    """Coordinates (n, 2) float32 of the centres of pixels (row, column) as stored (coords' convention: y up)."""
    return torch.stack([(height - 1 - rows).float(), cols.float()], dim=1)


class Sampler:
    """Draws batches from a picture of labels (H, W), row 0 on top; from its training pixels only, given a `Split`."""

    def __init__(self, labels: torch.Tensor, split: Split | None = None) -> None:
        self.labels = labels
        self.height, self.width = labels.shape
        self.split = split
        self._extent = torch.tensor([self.height - 1, self.width - 1], dtype=torch.float32, device=labels.device)
        self._pixels = _TrainingPixels(split) if split is not None else None

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(coordinates (n, 2) float32, labels (n,) long) drawn with `generator`."""
        if self._pixels is None:
            yx = torch.rand(n, 2, generator=generator, device=self.labels.device) * self._extent
            return yx, label_at(self.labels, yx).long()
        rows, cols = self._pixels.draw(n, generator)
        centre = _centres(rows, cols, self.height)
        # Uniform in the pixel's cell, cut to the picture as the unheld sampler is ([0, H - 1] x [0, W - 1]).
        jitter = torch.rand(n, 2, generator=generator, device=self.labels.device) - 0.5
        yx = torch.minimum(torch.maximum(centre + jitter, torch.zeros_like(centre)), self._extent)
        # A point on a cell's edge may round to the neighbour (half to even, float32 spacing on huge
        # pictures): keep the centre there, so the nearest pixel is always the training pixel drawn.
        near = torch.round(yx)
        yx = torch.where(((near - centre).abs() < 0.5).all(dim=1, keepdim=True), yx, centre)
        return yx, self.labels[rows, cols].long()


class ValueSampler:
    """Draws batches from a picture of values (H, W, C) in [0, 1], row 0 on top; from its training pixels only, given a `Split`."""

    def __init__(self, values: torch.Tensor, split: Split | None = None) -> None:
        self.values = values
        self.height, self.width = values.shape[:2]
        self.split = split
        self._extent = torch.tensor([self.height - 1, self.width - 1], dtype=torch.float32, device=values.device)
        self._pixels: _TrainingPixels | None = None
        self._lattice: torch.Tensor | None = None
        if split is not None and split.kind == CHECKERBOARD:
            self._lattice = values[::2, ::2]  # a view: the training pixels as a picture of their own
            h, w = self._lattice.shape[:2]
            self._lattice_extent = torch.tensor([h - 1, w - 1], dtype=torch.float32, device=values.device)
        elif split is not None:
            self._pixels = _TrainingPixels(split)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(coordinates (n, 2) float32, values (n, C) float32) drawn with `generator`."""
        if self._lattice is not None:
            # Uniform over the lattice picture in its own coordinates, then scaled back: lattice row i
            # is stored row 2 i, lattice column j is column 2 j.
            sub = torch.rand(n, 2, generator=generator, device=self.values.device) * self._lattice_extent
            values = bilinear_at(self._lattice, sub)
            row = 2 * (self._lattice_extent[0] - sub[:, 0])
            yx = torch.stack([(self.height - 1) - row, 2 * sub[:, 1]], dim=1)
            return yx, values
        if self._pixels is not None:
            rows, cols = self._pixels.draw(n, generator)
            return _centres(rows, cols, self.height), self.values[rows, cols]
        yx = torch.rand(n, 2, generator=generator, device=self.values.device) * self._extent
        return yx, bilinear_at(self.values, yx)


def preview_batch(sampler: Sampler | ValueSampler, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch of `n` from a stream of its own seeded by `seed` (a run's "preview" seed), never a training batch.

    What samples.png shows (`training.Trainer.preview_batch`) and the lab's training-batch
    layer draws (`loading.run_preview_batch`): coordinates (n, 2) and labels or values, as numpy.
    """
    device = (sampler.labels if isinstance(sampler, Sampler) else sampler.values).device
    yx, labels = sampler.sample(n, torch.Generator(device=device).manual_seed(seed))
    return yx.cpu().numpy(), labels.cpu().numpy()
