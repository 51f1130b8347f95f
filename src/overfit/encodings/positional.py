"""`positional`: NeRF's axis-aligned frequencies [v, sin(2^k pi v), cos(2^k pi v)], k < L (Mildenhall et al. 2020)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
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


def glsl(enc: PositionalEncoding, packer: Any) -> tuple[list[str], int, np.ndarray, None, int]:
    """The WebGL viewer's form of this encoding, its constants laid out through `packer` (an `export.webgl.Packer`).

    The coordinates v in a[0], then the sin block and the cos block, frequencies as literals.
    Returns (GLSL lines filling a[] from v, vec4s used, each feature's place in a[], table texture, MACs per pixel).
    """
    freqs = enc.freqs.detach().double().cpu().numpy()  # (L,) = 2^k pi
    L = freqs.size
    s4 = packer.vec4s(2 * L)
    code = ["a[0] = vec4(v, 0.0, 0.0);"]
    # Feature j of the sin (and cos) block: axis j // L, octave j % L (the flatten of (N, 2, L)).
    for q in range(s4):
        parts = []
        for c in range(4):
            j = 4 * q + c
            if j < 2 * L:
                cycles = float(freqs[j % L] / (2 * math.pi))  # 2^k pi / 2 pi = 2^(k - 1)
                parts.append(f"v.{'xy'[j // L]} * {packer.literal(cycles)}")
            else:
                parts.append("0.0")
        code.append(f"{{ vec4 t = fract(vec4({', '.join(parts)})); a[{1 + q}] = sin(TAU * t); a[{1 + s4 + q}] = cos(TAU * t); }}")
    columns = np.concatenate([[0, 1], 4 + np.arange(2 * L), 4 + 4 * s4 + np.arange(2 * L)])
    return code, 1 + 2 * s4, columns, None, 4 * L
