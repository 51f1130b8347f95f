"""`fourier`: random Fourier features [sin(2 pi B v), cos(2 pi B v)], B ~ N(0, sigma^2) (Tancik et al. 2020)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from ..config import EncodingConfig


class FourierFeatures(nn.Module):
    """gamma(v) = [sin(2 pi B v), cos(2 pi B v)]: (N, 2) -> (N, 2m), B (2, m) ~ N(0, sigma^2) fixed.

    B is a buffer: drawn once at construction (from torch's global generator, which
    the trainer seeds) and saved with the weights.
    """

    def __init__(self, features: int, sigma: float) -> None:
        super().__init__()
        self.register_buffer("B", torch.randn(2, features) * sigma)
        self.out_features = 2 * features

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        angles = (2 * math.pi) * (v @ self.B)  # (N, m)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)


def build(cfg: EncodingConfig, input_range: float | None, height: int, width: int) -> nn.Module:
    return FourierFeatures(cfg.features, cfg.sigma)
