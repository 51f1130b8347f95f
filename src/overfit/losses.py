"""The loss registry: name -> loss(outputs, targets) -> scalar.

Binary losses take logits (N, 2) and integer labels (N,); regression losses take
predicted values (N, C) and target values (N, C) in [0, 1]. Leading dimensions are
batches of their own (K stacked runs: (K, N, C) -> K means), so one call computes
each run's loss in a stack.

`double_softmax` reproduces the original experiment exactly: its network ended
in a Softmax layer and its loss (MegEngine's `F.loss.cross_entropy`, which takes
logits by default) applied a second softmax on top. That is not cross-entropy
with weaker gradients: the loss sees s = p_bg - p_ink in [-1, 1], so the
probability it scores, sigmoid(s), can never pass sigmoid(1) = 0.731. For a
prediction that is the same everywhere its slope in s is sigmoid(s) - q (q the
background share), which keeps pushing towards "all background" whenever q is
above 0.731 (0.80 on the default picture): the first softmax's logit margin grows
without end, and a run that has not picked up the picture's structure by then can
stay there (bench/trap_study.py measures it per seed).
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
