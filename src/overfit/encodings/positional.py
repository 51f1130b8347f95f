"""`positional`: NeRF's axis-aligned frequencies [v, sin(2^k pi v), cos(2^k pi v)], k < L (Mildenhall et al. 2020)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ..config import EncodingConfig


class PositionalEncoding(nn.Module):
    """[v, sin(2^k pi v), cos(2^k pi v)] for k < L, per axis: (N, 2) -> (N, 2 + 4L)."""

    def __init__(self, frequencies: int) -> None:
        super().__init__()
        self.register_buffer("freqs", (2.0 ** torch.arange(frequencies, dtype=torch.float32)) * math.pi)
        self.out_features = 2 + 4 * frequencies

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        angles = (v[:, :, None] * self.freqs).flatten(1)  # (N, 2L): y's octaves, then x's
        return torch.cat([v, torch.sin(angles), torch.cos(angles)], dim=1)


def build(cfg: EncodingConfig, input_range: float | None, height: int, width: int) -> nn.Module:
    return PositionalEncoding(cfg.frequencies)
