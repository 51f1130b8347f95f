"""Infinite random minibatches of (coordinate, target), drawn on the training device.

As in the original experiment, coordinates are uniform over [0, H - 1] x [0, W - 1]
and, for binary pictures, the label is that of the nearest pixel (see `coords`).
For gray and colour pictures the target is the picture bilinearly interpolated at
the coordinate (as tiny-cuda-nn's image sample does), so the network learns a
continuous function instead of a staircase. Sampling uses a torch
generator on the same device as the model, so a step never waits for the host
and a run is reproducible from its seed.
"""

from __future__ import annotations

import torch

from .coords import bilinear_at, label_at


class Sampler:
    """Draws batches from a picture of labels (H, W), row 0 on top."""

    def __init__(self, labels: torch.Tensor) -> None:
        self.labels = labels
        self.height, self.width = labels.shape
        self._extent = torch.tensor([self.height - 1, self.width - 1], dtype=torch.float32, device=labels.device)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(coordinates (n, 2) float32, labels (n,) long) drawn with `generator`."""
        yx = torch.rand(n, 2, generator=generator, device=self.labels.device) * self._extent
        return yx, label_at(self.labels, yx).long()


class ValueSampler:
    """Draws batches from a picture of values (H, W, C) in [0, 1], row 0 on top."""

    def __init__(self, values: torch.Tensor) -> None:
        self.values = values
        self.height, self.width = values.shape[:2]
        self._extent = torch.tensor([self.height - 1, self.width - 1], dtype=torch.float32, device=values.device)

    def sample(self, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(coordinates (n, 2) float32, values (n, C) float32) drawn with `generator`."""
        yx = torch.rand(n, 2, generator=generator, device=self.values.device) * self._extent
        return yx, bilinear_at(self.values, yx)
