"""The loss registry: name -> loss(outputs, targets) -> scalar.

Binary losses take logits (N, 2) and integer labels (N,); regression losses take
predicted values (N, C) and target values (N, C) in [0, 1].

`double_softmax` reproduces the original experiment exactly: its network ended
in a Softmax layer and its loss (MegEngine's `F.loss.cross_entropy`, which takes
logits by default) applied a second softmax on top. Training on those
squashed "logits" still works, only with weaker gradients.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of softmax(logits) against integer labels."""
    return F.cross_entropy(logits, labels)


def double_softmax(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of softmax(softmax(logits)): the original code's effective loss."""
    return F.cross_entropy(torch.softmax(logits, dim=-1), labels)


def mse(values: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every value of every channel."""
    return F.mse_loss(values, targets)


LOSSES: dict[str, LossFn] = {
    "cross_entropy": cross_entropy,
    "double_softmax": double_softmax,
    "mse": mse,
}
