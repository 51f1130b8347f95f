"""The coordinate network: fixed input scaling, an input encoding, then an MLP.

The input scaling lives inside the model as buffers, so a model maps raw pixel
coordinates (y, x) to its outputs no matter how it was trained: rendering,
exporting and evaluating never need to know the scaling or the encoding
separately. Outputs are 2 logits [ink, background] for binary pictures, or one
value per channel (gray: 1, rgb: 3; about [0, 1]) for regression.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from . import stackops
from .activations import ACTIVATIONS
from .config import EncodingConfig, ModelConfig, RunConfig
from .coords import input_affine
from .encodings import ENCODINGS

# bf16 runs only the products of Linear layers whose inputs and outputs are all at least this wide: the 2 -> 64 and
# 64 -> 2 layers are under 1 % of the arithmetic, and their rounding is what moves the picture's edges.
BF16_MIN_WIDTH = 64


class InputScaling(nn.Module):
    """y = x * scale + offset per axis; (N, 2) -> (N, 2)."""

    def __init__(self, scale: torch.Tensor, offset: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.clone().float())
        self.register_buffer("offset", offset.clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.offset, x, self.scale)


class ActivationLayer(nn.Module):
    """The registered activation `name` (see `activations`), elementwise; `w0` is its frequency or width where it has one."""

    def __init__(self, name: str, w0: float) -> None:
        super().__init__()
        self.name = name
        self.w0 = float(w0)
        self.fn = ACTIVATIONS[name].fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x, self.w0)

    def extra_repr(self) -> str:
        return self.name + (f", w0={self.w0}" if "model.w0" in ACTIVATIONS[self.name].fields else "")


class CoordinateMLP(nn.Module):
    """(N, 2) pixel coordinates -> (N, out) outputs: scaling -> encoding -> MLP."""

    def __init__(self, cfg: ModelConfig, height: int, width: int, encoding: EncodingConfig | None = None, out_channels: int = 2) -> None:
        super().__init__()
        encoding = encoding or EncodingConfig()
        self.cfg = cfg
        self.encoding_cfg = encoding
        self.out_channels = out_channels
        self.scaling = InputScaling(*input_affine(height, width, cfg.input_range))
        self.encoding = ENCODINGS[encoding.kind].build(encoding, cfg.input_range, height, width)
        activation = ACTIVATIONS[cfg.activation]
        layers: list[nn.Module] = []
        fan_in = self.encoding.out_features
        for w in cfg.hidden:
            layers.append(nn.Linear(fan_in, w))
            if cfg.batchnorm:
                # The original's order: Linear -> BatchNorm -> activation.
                layers.append(nn.BatchNorm1d(w))
            layers.append(ActivationLayer(cfg.activation, cfg.w0))
            fan_in = w
        layers.append(nn.Linear(fan_in, out_channels))
        self.mlp = nn.Sequential(*layers)
        if activation.init is not None:
            if cfg.init == "original":
                original_init_(self, weights=False)  # BatchNorm only; the activation owns the Linear init
            activation.init([m for m in self.mlp if isinstance(m, nn.Linear)], cfg.w0)
        elif cfg.init == "original":
            original_init_(self)

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encoding(self.scaling(yx)))

    def _stacked_layers(self, bf16: bool) -> list[tuple[str, str, nn.Module, Any, torch.dtype]]:
        """`_plan_stacked_layers` of this model's MLP, made once per precision."""
        plans = self.__dict__.setdefault("_stacked_plans", {})
        if bf16 not in plans:
            plans[bf16] = _plan_stacked_layers(self.mlp, bf16)
        return plans[bf16]

    def forward_stacked(self, tensors: dict[str, torch.Tensor], yx: torch.Tensor, bf16: bool = False) -> torch.Tensor:
        """The forward pass of K models of this one's shape in training mode, layer by layer (`stackops`).

        tensors: every parameter and buffer by its name here, stacked (K, ...); yx: (K, B, 2)
        coordinates -> (K, B, out). Equal to each model's own `forward` (in training mode) on its
        slice, to float tolerance; BatchNorm's running statistics are updated in their slices.
        bf16: the products of Linear layers whose sides are all at least `BF16_MIN_WIDTH` run in
        bfloat16 (the narrow first and last layers stay float32).
        """
        def own(prefix: str) -> dict[str, torch.Tensor]:
            return {name[len(prefix):]: t for name, t in tensors.items() if name.startswith(prefix)}

        h = torch.addcmul(tensors["scaling.offset"].unsqueeze(1), yx, tensors["scaling.scale"].unsqueeze(1))
        h = stackops.per_model(self.encoding, own("encoding."), h)
        for kind, name, layer, fused, compute in self._stacked_layers(bf16):
            if kind == "linear":
                h = stackops.linear(h, tensors[f"mlp.{name}.weight"], tensors[f"mlp.{name}.bias"], fused, compute)
            elif kind == "batchnorm":
                h = stackops.batchnorm(h, layer, own(f"mlp.{name}."))
            elif kind == "activation":
                h = layer(h)
            else:
                h = stackops.per_model(layer, own(f"mlp.{name}."), h)
        return h.float()


def _plan_stacked_layers(mlp: nn.Sequential, bf16: bool) -> list[tuple[str, str, nn.Module, Any, torch.dtype]]:
    """How `forward_stacked` goes through `mlp`: (kind, name, layer, the activation fused into a Linear, compute dtype)."""
    layers = list(mlp.named_children())
    plan: list[tuple[str, str, nn.Module, Any, torch.dtype]] = []
    i = 0
    while i < len(layers):
        name, layer = layers[i]
        if isinstance(layer, nn.Linear):
            fused = None  # the activation right after it, done in place in the same call where it has an in-place form
            after = layers[i + 1][1] if i + 1 < len(layers) else None
            if isinstance(after, ActivationLayer) and ACTIVATIONS[after.name].inplace is not None:
                fused, i = ACTIVATIONS[after.name], i + 1
            wide = min(layer.in_features, layer.out_features) >= BF16_MIN_WIDTH
            plan.append(("linear", name, layer, fused, torch.bfloat16 if bf16 and wide else torch.float32))
        elif isinstance(layer, nn.BatchNorm1d):
            plan.append(("batchnorm", name, layer, None, torch.float32))
        elif isinstance(layer, ActivationLayer):
            plan.append(("activation", name, layer, None, torch.float32))
        else:
            plan.append(("module", name, layer, None, torch.float32))
        i += 1
    return plan


def original_init_(model: nn.Module, weights: bool = True) -> None:
    """The original framework's init (MegEngine's Linear.reset_parameters).

    Weights ~ N(0, 1 / fan_in), biases 0; BatchNorm weight 1, bias 0. With the
    `relu_1` recipe this converges about twice as fast as PyTorch's default
    (Kaiming-uniform with a = sqrt(5), i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in))).
    """
    for m in model.modules():
        if isinstance(m, nn.Linear) and weights:
            nn.init.normal_(m.weight, 0.0, math.sqrt(1.0 / m.in_features))
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def build_model(cfg: ModelConfig, height: int, width: int, encoding: EncodingConfig | None = None, out_channels: int = 2) -> CoordinateMLP:
    """The model for a picture of height x width pixels."""
    return CoordinateMLP(cfg, height, width, encoding, out_channels)


def model_for(run_cfg: RunConfig, height: int, width: int) -> CoordinateMLP:
    """The model a run config describes, for a picture of height x width pixels (weights freshly initialised)."""
    return CoordinateMLP(run_cfg.model, height, width, run_cfg.encoding, run_cfg.out_channels)
