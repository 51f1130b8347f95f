"""The activation registry: name -> how to build it and, where it matters, how to initialise around it.

The config validates `model.activation` against these names, and the CLI's choices
and the lab's drop-down come from the same dict, so adding an entry here is all it
takes to offer a new activation everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import nn


class Cos(nn.Module):
    """cos(x): periodic; with inputs in [-3, 3] it converges faster than with [-1, 1]."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cos(x)


class Sin(nn.Module):
    """sin(x): periodic, without SIREN's frequency factor or initialisation."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


class Sine(nn.Module):
    """sin(w0 x), the SIREN activation (Sitzmann et al. 2020)."""

    def __init__(self, w0: float) -> None:
        super().__init__()
        self.w0 = float(w0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(self.w0 * x)

    def extra_repr(self) -> str:
        return f"w0={self.w0}"


class Gauss(nn.Module):
    """exp(-(a x)^2), the Gaussian activation (Ramasinghe and Lucey 2022); a is `model.w0`."""

    def __init__(self, a: float) -> None:
        super().__init__()
        self.a = float(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-(self.a * x) ** 2)

    def extra_repr(self) -> str:
        return f"a={self.a}"


@torch.no_grad()
def siren_init(linears: Sequence[nn.Linear], w0: float) -> None:
    """SIREN's initialisation, as its reference code does it (not the paper's formula).

    First layer: W ~ U(-1/n, 1/n) with n = fan_in, so sin(w0 W x) spans a few periods
    over the input range. Every later layer (the output layer too):
    W ~ U(-sqrt(6/n)/w0, sqrt(6/n)/w0), which keeps the pre-activations of
    sin(w0 .) arcsine-distributed whatever the depth (SIREN sec. 3.2). Biases keep
    PyTorch's default, as in the reference code.
    """
    first, *rest = linears
    n = first.in_features
    first.weight.uniform_(-1.0 / n, 1.0 / n)
    for layer in rest:
        bound = math.sqrt(6.0 / layer.in_features) / w0
        layer.weight.uniform_(-bound, bound)


@dataclass(frozen=True)
class Activation:
    """A registry entry: `module(w0)` builds the layer; `init(linears, w0)`, if set, replaces `model.init`."""

    module: Callable[[float], nn.Module]
    description: str
    init: Callable[[Sequence[nn.Linear], float], None] | None = None
    uses_w0: bool = False


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(lambda w0: nn.ReLU(), "max(0, x)"),
    "tanh": Activation(lambda w0: nn.Tanh(), "tanh(x)"),
    "cos": Activation(lambda w0: Cos(), "cos(x)"),
    "sin": Activation(lambda w0: Sin(), "sin(x), plain"),
    "siren": Activation(Sine, "sin(w0 x) with SIREN's initialisation (w0 = model.w0, 30 in the paper)", siren_init, uses_w0=True),
    "gauss": Activation(Gauss, "exp(-(a x)^2) with a = model.w0", uses_w0=True),
    "gelu": Activation(lambda w0: nn.GELU(), "GELU"),
    "sigmoid": Activation(lambda w0: nn.Sigmoid(), "1 / (1 + exp(-x))"),
    "leaky_relu": Activation(lambda w0: nn.LeakyReLU(), "max(0.01 x, x)"),
}
