"""`fourier`: random Fourier features [sin(2 pi B v), cos(2 pi B v)], B ~ N(0, sigma^2) (Tancik et al. 2020)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
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


def glsl(enc: FourierFeatures, packer: Any) -> tuple[list[str], int, np.ndarray, None, int]:
    """The WebGL viewer's form of this encoding, its constants laid out through `packer` (an `export.webgl.Packer`).

    B in the weight texture, sin block then cos block in a[].
    Returns (GLSL lines filling a[] from v, vec4s used, each feature's place in a[], table texture, MACs per pixel).
    """
    B = enc.B.detach().float().cpu().numpy()  # (2, m)
    m = B.shape[1]
    m4 = packer.vec4s(m)
    rows = np.zeros((2, 4 * m4), dtype=np.float32)
    rows[:, :m] = B
    off = packer.add(rows)
    # Phases in cycles, reduced to [0, 1) before the 2 pi: exact for any zoom, where sin of a
    # large angle would lose digits on some GPUs.
    code = [f"for (int k = 0; k < {m4}; k++) {{",
            f"  vec4 t = fract(v.x * wt({off} + k) + v.y * wt({off + m4} + k));",
            "  a[k] = sin(TAU * t);",
            f"  a[{m4} + k] = cos(TAU * t);",
            "}"]
    columns = np.concatenate([np.arange(m), 4 * m4 + np.arange(m)])
    return code, 2 * m4, columns, None, 2 * m
