"""`none`: the scaled coordinates themselves (the original experiment)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:
    from ..config import EncodingConfig


class Identity(nn.Module):
    """The scaled coordinates unchanged: (N, 2) -> (N, 2)."""

    out_features = 2

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return v


def build(cfg: EncodingConfig, input_range: float | None, height: int, width: int) -> nn.Module:
    return Identity()


def glsl(enc: Identity, packer: Any) -> tuple[list[str], int, np.ndarray, None, int]:
    """The WebGL viewer's form of this encoding, its constants laid out through `packer` (an `export.webgl.Packer`).

    The scaled coordinates v themselves in a[0].xy: 1 vec4, no table, no MACs.
    Returns (GLSL lines filling a[] from v, vec4s used, each feature's place in a[], table texture, MACs per pixel).
    """
    return ["a[0] = vec4(v, 0.0, 0.0);"], 1, np.array([0, 1]), None, 0
