"""The loss registry: name -> loss(outputs, targets) -> scalar.

Binary losses take logits (N, 2) and integer labels (N,); regression losses take
predicted values (N, C) and target values (N, C) in [0, 1]. Leading dimensions are
batches of their own (K stacked runs: (K, N, C) -> K means), so one call computes
each run's loss in a stack.

`double_softmax` reproduces the original experiment exactly: its network ended
in a Softmax layer and its loss (MegEngine's `F.loss.cross_entropy`, which takes
logits by default) applied a second softmax on top. Training on those
squashed "logits" still works, only with weaker gradients.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import Tensor

# Importing this registry costs no torch import (the config validates loss names against it).
LossFn = Callable[["Tensor", "Tensor"], "Tensor"]


def cross_entropy(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of softmax(logits) against integer labels: logits (..., N, C), labels (..., N) -> means (...)."""
    import torch.nn.functional as F

    each = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), reduction="none")
    return each.view(labels.shape).mean(dim=-1)


def double_softmax(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of softmax(softmax(logits)): the original code's effective loss; shapes as `cross_entropy`."""
    return cross_entropy(logits.softmax(dim=-1), labels)


def mse(values: Tensor, targets: Tensor) -> Tensor:
    """Mean squared error over every value of every channel: values and targets (..., N, C) -> means (...)."""
    return (values - targets).square().flatten(-2).mean(dim=-1)


LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "double_softmax": double_softmax,
    "mse": mse,
}
