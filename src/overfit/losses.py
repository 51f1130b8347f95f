"""The loss registry: name -> loss(outputs, targets) -> scalar.

Binary losses take logits (N, 2) and integer labels (N,); regression losses take
predicted values (N, C) and target values (N, C) in [0, 1].

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
    """Mean cross-entropy of softmax(logits) against integer labels."""
    import torch.nn.functional as F

    return F.cross_entropy(logits, labels)


def double_softmax(logits: Tensor, labels: Tensor) -> Tensor:
    """Mean cross-entropy of softmax(softmax(logits)): the original code's effective loss."""
    import torch.nn.functional as F

    return F.cross_entropy(logits.softmax(dim=-1), labels)


def mse(values: Tensor, targets: Tensor) -> Tensor:
    """Mean squared error over every value of every channel."""
    import torch.nn.functional as F

    return F.mse_loss(values, targets)


LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "double_softmax": double_softmax,
    "mse": mse,
}
