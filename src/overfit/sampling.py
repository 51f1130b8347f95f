"""Infinite random minibatches of (coordinate, target), drawn on the training device; and held-out pixels.

As in the original experiment, coordinates are uniform over [0, H - 1] x [0, W - 1]
and, for binary pictures, the label is that of the nearest pixel (see `coords`).
For gray and colour pictures the target is the picture bilinearly interpolated at
the coordinate (as tiny-cuda-nn's image sample does), so the network learns a
continuous function instead of a staircase.

Every draw is a function of (seed, step) alone (`counter_bits`: a counter-based generator,
computed on the model's device): the batch of step t of a run is the same whether the run
trains alone or in any stack, whether it was interrupted or not, and resuming needs only the
step. A stack draws the bits of all its runs in one call (`StackedTrainer`); a sampler turns
bits into coordinates and targets (`draw`), for one run or many of one picture at once.

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

import functools
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from .coords import bilinear_at, gather, label_at
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


# -- the counter-based generator ------------------------------------------------------------------

_MASK = 0xFFFFFFFF


def _hash32(x: Any) -> Any:
    """A bijection of 32-bit values that mixes every bit into every other: for int64 tensors holding [0, 2^32), or ints.

    Two multiply-xorshift rounds (constants from Wellons' hash prospector, bias about 0.02); each
    product stays below 2^63, so int64 arithmetic is exact on every device.
    """
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _MASK
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _MASK
    return x ^ (x >> 15)


def stream_keys(seed: int) -> tuple[int, int]:
    """The two 32-bit keys of the stream `seed` (its low and high halves, mixed)."""
    return _hash32((seed & _MASK) ^ 0x9E3779B9), _hash32(((seed >> 32) & _MASK) ^ 0x7F4A7C15)


@functools.lru_cache(maxsize=16)
def _counters(n: int, device: torch.device) -> torch.Tensor:
    return torch.arange(n, dtype=torch.int64, device=device)


def counter_bits(keys: Sequence[tuple[int, int]], steps: Sequence[int], n: int, width: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(K, n, width) int64 of uniform 32-bit values: element i of step t of stream k, a function of (keys[k], t, i) alone.

    keys: each stream's `stream_keys`; steps: each stream's step, in [0, 2^32). Within a step the
    n * width values are distinct (a bijection of i), and two steps of a stream share nothing but by
    chance (both of their 32-bit step keys would have to collide). The keys of each (stream, step)
    are mixed on the host, so the device does two hashes per value and no more.
    """
    a = [_hash32(k0 ^ (t & _MASK)) for (k0, _), t in zip(keys, steps)]
    b = [_hash32(k1 ^ _hash32((t & _MASK) ^ 0x85EBCA6B)) for (_, k1), t in zip(keys, steps)]
    ab = torch.tensor([a, b], dtype=torch.int64, device=device)
    i = _counters(n * width, torch.device(device))
    return _hash32(_hash32(ab[1, :, None] ^ i) ^ ab[0, :, None]).view(len(a), n, width)


def unit(bits: torch.Tensor) -> torch.Tensor:
    """32-bit values -> float32 uniform in [0, 1) on a grid of 2^-24 (as torch.rand draws float32)."""
    return (bits >> 8).to(torch.float32) * (1.0 / (1 << 24))


def index(bits: torch.Tensor, n: int) -> torch.Tensor:
    """32-bit values -> int64 uniform in [0, n), exact for any n below 2^31 (Lemire's multiply-shift)."""
    return (bits * n) >> 32


# -- turning bits into batches --------------------------------------------------------------------


class _TrainingPixels:
    """Uniform draws of training pixels (row, column) of a split, as stored."""

    def __init__(self, split: Split) -> None:
        self.split = split
        height, width = split.shape
        self.lattice = split.kind == CHECKERBOARD
        if self.lattice:  # rows and columns 0, 2, 4, ...: no index list needed
            self.rows, self.cols = (height + 1) // 2, (width + 1) // 2
        else:
            self.flat = split.train.reshape(-1).nonzero().squeeze(1)  # (n_train,) flat indices
        self.width = width

    def draw(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bits (n, 2) for a lattice, (n, 1) otherwise -> rows, columns (n,)."""
        if self.lattice:
            return 2 * index(bits[:, 0], self.rows), 2 * index(bits[:, 1], self.cols)
        flat = self.flat.index_select(0, index(bits[:, 0], self.flat.numel()))
        return flat // self.width, flat % self.width


def _centres(rows: torch.Tensor, cols: torch.Tensor, height: int) -> torch.Tensor:
    """Coordinates (n, 2) float32 of the centres of pixels (row, column) as stored (coords' convention: y up)."""
    return torch.stack([(height - 1 - rows).float(), cols.float()], dim=1)


class _Drawn:
    """What every sampler shares: how many bits a sample takes, one run's batch of a step, and equality of pictures."""

    bits_per_sample: int
    """32-bit values a sample takes."""
    picture: torch.Tensor
    split: Split | None

    def draw(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def draw_many(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bits (K, n, bits_per_sample) of K runs of this picture and split -> (K, n, 2) coordinates and (K, n, ...) targets."""
        k, n = bits.shape[:2]
        yx, y = self.draw(bits.reshape(k * n, -1))
        return yx.view(k, n, 2), y.view(k, n, *y.shape[1:])

    def sample(self, n: int, seed: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of `n` of step `step` of the stream `seed`: coordinates (n, 2) float32 and targets."""
        return self.draw(counter_bits([stream_keys(seed)], [step], n, self.bits_per_sample, self.picture.device)[0])

    def same_batches(self, other: object) -> bool:
        """Whether `other` turns equal bits into equal batches (the same kind of sampler, picture and split)."""
        if type(other) is not type(self) or other.picture.shape != self.picture.shape:  # type: ignore[attr-defined]
            return False
        mine, theirs = self.split, other.split  # type: ignore[attr-defined]
        if (mine is None) != (theirs is None):
            return False
        if mine is not None and (mine.kind != theirs.kind or not torch.equal(mine.train, theirs.train)):
            return False
        return other.picture is self.picture or torch.equal(other.picture, self.picture)  # type: ignore[attr-defined]


class Sampler(_Drawn):
    """Draws batches from a picture of labels (H, W), row 0 on top; from its training pixels only, given a `Split`."""

    def __init__(self, labels: torch.Tensor, split: Split | None = None) -> None:
        self.labels = self.picture = labels
        self.height, self.width = labels.shape
        self.split = split
        self._extent = torch.tensor([self.height - 1, self.width - 1], dtype=torch.float32, device=labels.device)
        self._pixels = _TrainingPixels(split) if split is not None else None
        self.bits_per_sample = 2 if self._pixels is None else (2 if self._pixels.lattice else 1) + 2

    def draw(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bits (n, bits_per_sample) -> (coordinates (n, 2) float32, labels (n,) long)."""
        if self._pixels is None:
            yx = unit(bits) * self._extent
            return yx, label_at(self.labels, yx).long()
        rows, cols = self._pixels.draw(bits[:, :-2])
        centre = _centres(rows, cols, self.height)
        # Uniform in the pixel's cell, cut to the picture as the unheld sampler is ([0, H - 1] x [0, W - 1]).
        jitter = unit(bits[:, -2:]) - 0.5
        yx = torch.minimum(torch.maximum(centre + jitter, torch.zeros_like(centre)), self._extent)
        # A point on a cell's edge may round to the neighbour (half to even, float32 spacing on huge
        # pictures): keep the centre there, so the nearest pixel is always the training pixel drawn.
        near = torch.round(yx)
        yx = torch.where(((near - centre).abs() < 0.5).all(dim=1, keepdim=True), yx, centre)
        return yx, gather(self.labels, rows, cols).long()


class ValueSampler(_Drawn):
    """Draws batches from a picture of values (H, W, C) in [0, 1], row 0 on top; from its training pixels only, given a `Split`."""

    def __init__(self, values: torch.Tensor, split: Split | None = None) -> None:
        self.values = self.picture = values
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
        self.bits_per_sample = 1 if self._pixels is not None else 2

    def draw(self, bits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """bits (n, bits_per_sample) -> (coordinates (n, 2) float32, values (n, C) float32)."""
        if self._lattice is not None:
            # Uniform over the lattice picture in its own coordinates, then scaled back: lattice row i
            # is stored row 2 i, lattice column j is column 2 j.
            sub = unit(bits) * self._lattice_extent
            values = bilinear_at(self._lattice, sub)
            row = 2 * (self._lattice_extent[0] - sub[:, 0])
            yx = torch.stack([(self.height - 1) - row, 2 * sub[:, 1]], dim=1)
            return yx, values
        if self._pixels is not None:
            rows, cols = self._pixels.draw(bits)
            return _centres(rows, cols, self.height), gather(self.values, rows, cols)
        yx = unit(bits) * self._extent
        return yx, bilinear_at(self.values, yx)


def preview_batch(sampler: Sampler | ValueSampler, seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The batch of `n` of the stream `seed` (a run's "preview" seed), never a training batch, as numpy.

    What samples.png shows (`training.Trainer.preview_batch`) and the lab's training-batch
    layer draws (`loading.run_preview_batch`): coordinates (n, 2) and labels or values.
    """
    yx, labels = sampler.sample(n, seed, 0)
    return yx.cpu().numpy(), labels.cpu().numpy()
