"""The activation registry: name -> the function, its initialisation, its shader form and its fields.

Adding an entry here is all it takes to offer a new activation everywhere: the config
validates `model.activation` against these names, the CLI's choices and the lab's
drop-down list them, the model applies `fn`, the WebGL export writes `glsl`, and forms
show the config fields named in `fields` only when this activation is chosen.

Importing this module costs no torch import (the command line's start-up depends on
it): `fn` uses tensor methods, and `init` imports torch when it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

from .glsl import glsl_float

if TYPE_CHECKING:
    from torch import Tensor, nn


def siren_init(linears: Sequence[nn.Linear], w0: float) -> None:
    """SIREN's initialisation, as its reference code does it (not the paper's formula).

    First layer: W ~ U(-1/n, 1/n) with n = fan_in, so sin(w0 W x) spans a few periods
    over the input range. Every later layer (the output layer too):
    W ~ U(-sqrt(6/n)/w0, sqrt(6/n)/w0), which keeps the pre-activations of
    sin(w0 .) arcsine-distributed whatever the depth (SIREN sec. 3.2). Biases keep
    PyTorch's default, as in the reference code.
    """
    import torch

    with torch.no_grad():
        first, *rest = linears
        n = first.in_features
        first.weight.uniform_(-1.0 / n, 1.0 / n)
        for layer in rest:
            bound = math.sqrt(6.0 / layer.in_features) / w0
            layer.weight.uniform_(-bound, bound)


def _gelu(x: Tensor, w0: float) -> Tensor:
    import torch.nn.functional as F

    return F.gelu(x)


def _leaky_relu(x: Tensor, w0: float) -> Tensor:
    import torch.nn.functional as F

    return F.leaky_relu(x, LEAKY_SLOPE)


def _relu_grad(g: Tensor, y: Tensor) -> Tensor:
    import torch

    return torch.ops.aten.threshold_backward(g, y, 0)  # one pass: g where y > 0, else 0


def _leaky_relu_(x: Tensor) -> Tensor:
    import torch.nn.functional as F

    return F.leaky_relu_(x, LEAKY_SLOPE)


def _leaky_relu_grad(g: Tensor, y: Tensor) -> Tensor:
    import torch

    return torch.ops.aten.leaky_relu_backward(g, y, LEAKY_SLOPE, True)  # y has the sign of x


LEAKY_SLOPE = 0.01  # PyTorch's default negative slope


@dataclass(frozen=True)
class Activation:
    """A registry entry.

    fn(x, w0): the activation of a tensor, elementwise. glsl(s, w0): the same as a
    GLSL expression of the vec4 expression `s` (the viewer defines `wrap`, `gauss` and
    `gelu`). init(linears, w0), if set, replaces `model.init` for the Linear layers.
    fields: the config fields the activation reads besides its name.
    dead(a) / saturated(a): where an output `a` is flat (no gradient passes back), for
    the network view's dead units (ReLU at exactly 0) and saturated units (tanh or
    sigmoid within 1 % of an end); None where the activation has no such state.
    inplace(x) and grad_from_output(g, y), where the activation has them: `fn` applied in
    place, and its input's gradient from the output's gradient g and the output y. Training
    then fuses the activation into the Linear layer before it (`stackops.linear`: no second
    tensor, one pass back); without them it is differentiated through `fn`, only slower.
    """

    fn: Callable[[Tensor, float], Tensor]
    glsl: Callable[[str, float], str]
    description: str
    init: Callable[[Sequence[nn.Linear], float], None] | None = None
    fields: tuple[str, ...] = ()
    dead: Callable[[Tensor], Tensor] | None = None
    saturated: Callable[[Tensor], Tensor] | None = None
    inplace: Callable[[Tensor], Tensor] | None = None
    grad_from_output: Callable[[Tensor, Tensor], Tensor] | None = None


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(lambda x, w0: x.relu(), lambda s, w0: f"max({s}, 0.0)", "max(0, x)", dead=lambda a: a == 0,
                       inplace=lambda x: x.relu_(), grad_from_output=_relu_grad),
    # tanh(10) is 1 in fp32; larger inputs overflow some GPUs' exp.
    "tanh": Activation(lambda x, w0: x.tanh(), lambda s, w0: f"tanh(clamp({s}, -10.0, 10.0))", "tanh(x)",
                       saturated=lambda a: a.abs() > 0.99, inplace=lambda x: x.tanh_(), grad_from_output=lambda g, y: g * (1 - y * y)),
    "cos": Activation(lambda x, w0: x.cos(), lambda s, w0: f"cos(wrap({s}))", "cos(x)"),
    "sin": Activation(lambda x, w0: x.sin(), lambda s, w0: f"sin(wrap({s}))", "sin(x), plain"),
    # SIREN sec. 3.2: w0 = 30.
    "siren": Activation(lambda x, w0: (w0 * x).sin(), lambda s, w0: f"sin(wrap({glsl_float(w0)} * {s}))",
                        "sin(w0 x) with SIREN's initialisation (w0 = model.w0, 30 in the paper)", siren_init, ("model.w0",)),
    # Ramasinghe and Lucey 2022: exp(-(a x)^2), a = model.w0.
    "gauss": Activation(lambda x, w0: (-(w0 * x) ** 2).exp(), lambda s, w0: f"gauss({glsl_float(w0)} * {s})",
                        "exp(-(a x)^2) with a = model.w0", fields=("model.w0",)),
    "gelu": Activation(_gelu, lambda s, w0: f"gelu({s})", "GELU"),
    "sigmoid": Activation(lambda x, w0: x.sigmoid(), lambda s, w0: f"1.0 / (1.0 + exp(-{s}))", "1 / (1 + exp(-x))",
                          saturated=lambda a: (a < 0.01) | (a > 0.99), inplace=lambda x: x.sigmoid_(),
                          grad_from_output=lambda g, y: g * y * (1 - y)),
    "leaky_relu": Activation(_leaky_relu, lambda s, w0: f"mix({glsl_float(LEAKY_SLOPE)} * {s}, {s}, step(0.0, {s}))",
                             "max(0.01 x, x)", inplace=_leaky_relu_, grad_from_output=_leaky_relu_grad),
}
