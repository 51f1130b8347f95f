"""Tests for overfit.losses: both losses against hand computations, and double_softmax's weak gradients."""

from __future__ import annotations

import math

import pytest
import torch

from overfit.config import LOSS_NAMES
from overfit.losses import LOSSES, cross_entropy, double_softmax

LOGITS = [[2.0, -1.0], [0.5, 1.5]]
LABELS = [0, 1]


def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def _hand_cross_entropy(logits: list[list[float]], labels: list[int]) -> float:
    """Mean of -log(exp(l_y) / sum exp(l)), one sample at a time."""
    losses = [-math.log(math.exp(row[y]) / sum(math.exp(v) for v in row)) for row, y in zip(logits, labels)]
    return sum(losses) / len(losses)


def _hand_double_softmax(logits: list[list[float]], labels: list[int]) -> float:
    """p = softmax(logits); mean of -log(exp(p_y) / sum exp(p))."""
    return _hand_cross_entropy([_softmax(row) for row in logits], labels)


def test_registry_names():
    assert set(LOSSES) == {"cross_entropy", "double_softmax", "mse"}
    assert LOSSES["cross_entropy"] is cross_entropy
    assert LOSSES["double_softmax"] is double_softmax
    assert LOSS_NAMES == ("auto", *LOSSES)


def test_cross_entropy_by_hand():
    loss = cross_entropy(torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS))
    assert loss.shape == ()
    # Sample 1: -log(e^2 / (e^2 + e^-1)) = log(1 + e^-3); sample 2: log(1 + e^-1).
    expected = (math.log(1 + math.exp(-3)) + math.log(1 + math.exp(-1))) / 2
    assert _hand_cross_entropy(LOGITS, LABELS) == pytest.approx(expected, rel=1e-12)
    assert loss.item() == pytest.approx(expected, rel=1e-12)


def test_double_softmax_by_hand():
    loss = double_softmax(torch.tensor(LOGITS, dtype=torch.float64), torch.tensor(LABELS))
    assert loss.shape == ()
    # Sample 1: p = softmax(2, -1); loss = -log(exp(p0) / (exp(p0) + exp(p1))) = log(1 + exp(p1 - p0)).
    p1 = _softmax(LOGITS[0])
    p2 = _softmax(LOGITS[1])
    expected = (math.log(1 + math.exp(p1[1] - p1[0])) + math.log(1 + math.exp(p2[0] - p2[1]))) / 2
    assert _hand_double_softmax(LOGITS, LABELS) == pytest.approx(expected, rel=1e-12)
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    # And it is not plain cross-entropy.
    assert loss.item() != pytest.approx(_hand_cross_entropy(LOGITS, LABELS), rel=1e-3)


def test_double_softmax_is_bounded_for_two_classes():
    # Its "logits" are probabilities in [0, 1], so the loss lies in [log(1 + e^-1), log(1 + e)].
    logits = torch.tensor([[30.0, -30.0], [30.0, -30.0]])
    loss = double_softmax(logits, torch.tensor([0, 1]))
    right = double_softmax(logits[:1], torch.tensor([0]))
    wrong = double_softmax(logits[1:], torch.tensor([1]))
    assert right.item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    assert wrong.item() == pytest.approx(math.log(1 + math.e), rel=1e-6)
    assert loss.item() == pytest.approx((right.item() + wrong.item()) / 2, rel=1e-6)


def _grad(loss_fn, logits: list[list[float]], labels: list[int]) -> torch.Tensor:
    x = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss_fn(x, torch.tensor(labels)).backward()
    return x.grad


def test_cross_entropy_gradient_by_hand():
    # d/dl mean CE = (softmax(l) - onehot(y)) / N.
    grad = _grad(cross_entropy, LOGITS, LABELS)
    expected = [[(p - (j == y)) / 2 for j, p in enumerate(_softmax(row))] for row, y in zip(LOGITS, LABELS)]
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-15)


def test_double_softmax_gradient_by_hand():
    # Chain rule through the first softmax: for 2 classes, dp0/dl0 = p0 p1 = -dp0/dl1, so
    # d loss / d l0 = p0 p1 (g0 - g1) / N with g = softmax(p) - onehot(y).
    grad = _grad(double_softmax, LOGITS, LABELS)
    expected = []
    for row, y in zip(LOGITS, LABELS):
        p = _softmax(row)
        g = [q - (j == y) for j, q in enumerate(_softmax(p))]
        d0 = p[0] * p[1] * (g[0] - g[1]) / 2
        expected.append([d0, -d0])
    torch.testing.assert_close(grad, torch.tensor(expected, dtype=torch.float64), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("label", [0, 1], ids=["confident_right", "confident_wrong"])
def test_double_softmax_gradients_are_weaker_for_confident_logits(label):
    logits = [[4.0, -4.0]]
    ce = _grad(cross_entropy, logits, [label]).norm().item()
    ds = _grad(double_softmax, logits, [label]).norm().item()
    assert ds > 0
    assert ds < ce
    if label == 1:
        # Confidently wrong: cross-entropy pushes with ~1 per logit, double softmax with ~p0 p1 ~ 3e-4.
        assert ce > 1.0
        assert ds < 1e-3 * ce


@pytest.mark.parametrize("name", ["cross_entropy", "double_softmax", "mse"])
def test_leading_dimensions_are_batches_of_their_own(name):
    # A stack's K runs in one call: each slice's loss is the loss of that slice alone, as torch computes it.
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(3, 50, 2 if name != "mse" else 3, generator=gen)
    if name == "mse":
        y = torch.rand(3, 50, 3, generator=gen)
        reference = [torch.nn.functional.mse_loss(out[k], y[k]) for k in range(3)]
    else:
        y = torch.randint(0, 2, (3, 50), generator=gen)
        logits = out.softmax(-1) if name == "double_softmax" else out
        reference = [torch.nn.functional.cross_entropy(logits[k], y[k]) for k in range(3)]
    losses = LOSSES[name](out, y)
    assert losses.shape == (3,)
    torch.testing.assert_close(losses, torch.stack(reference), rtol=1e-6, atol=0)
    torch.testing.assert_close(LOSSES[name](out[1], y[1]), reference[1], rtol=1e-6, atol=0)  # no leading dimension: a scalar
