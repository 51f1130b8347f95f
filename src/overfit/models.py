"""The coordinate network: fixed input scaling, then an MLP to 2 logits.

The input scaling lives inside the model as buffers, so a model maps raw pixel
coordinates (y, x) to logits no matter how it was trained: rendering, exporting
and evaluating never need to know the scaling separately.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .activations import ACTIVATIONS
from .config import ModelConfig
from .coords import input_affine


class InputScaling(nn.Module):
    """y = x * scale + offset per axis; (N, 2) -> (N, 2)."""

    def __init__(self, scale: torch.Tensor, offset: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.clone().float())
        self.register_buffer("offset", offset.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.offset, x, self.scale)


class CoordinateMLP(nn.Module):
    """(N, 2) pixel coordinates -> (N, 2) logits: [ink, background]."""

    def __init__(self, cfg: ModelConfig, height: int, width: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.scaling = InputScaling(*input_affine(height, width, cfg.input_range))
        layers: list[nn.Module] = []
        fan_in = 2
        for w in cfg.hidden:
            layers.append(nn.Linear(fan_in, w))
            if cfg.batchnorm:
                # The original's order: Linear -> BatchNorm -> activation.
                layers.append(nn.BatchNorm1d(w))
            layers.append(ACTIVATIONS[cfg.activation]())
            fan_in = w
        layers.append(nn.Linear(fan_in, 2))
        self.mlp = nn.Sequential(*layers)
        if cfg.init == "original":
            original_init_(self)

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.scaling(yx))


def original_init_(model: nn.Module) -> None:
    """The original framework's init (MegEngine's Linear.reset_parameters).

    Weights ~ N(0, 1 / fan_in), biases 0; BatchNorm weight 1, bias 0. With the
    `relu_1` recipe this converges about twice as fast as PyTorch's default
    (Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
    """
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, math.sqrt(1.0 / m.in_features))
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_model(cfg: ModelConfig, height: int, width: int) -> CoordinateMLP:
    """The model for a picture of height x width pixels."""
    return CoordinateMLP(cfg, height, width)
