"""`none`: the scaled coordinates themselves (the original experiment)."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
