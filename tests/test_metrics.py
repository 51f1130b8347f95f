"""Tests for overfit.metrics: accuracy, ink IoU and loss against naive numpy, orientation, chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import overfit.metrics
from overfit.losses import cross_entropy
from overfit.metrics import BACKGROUND, INK, batch_metrics, dense_metrics

H, W = 5, 6


class ThresholdModel(nn.Module):
    """Fixed logits [ink, background] = [k (t - v), k (v - t)] with v = y or x: ink where v < t."""

    def __init__(self, axis: int, threshold: float, k: float = 1.0) -> None:
        super().__init__()
        self.axis, self.threshold, self.k = axis, threshold, k
        self.batch_sizes: list[int] = []

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(yx.shape[0])
        d = self.k * (yx[:, self.axis] - self.threshold)
        return torch.stack([-d, d], dim=1)


def _labels(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, (H, W), generator=gen, dtype=torch.long)


def _reference(ink_logit: np.ndarray, bg_logit: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Naive per-element numpy metrics: accuracy, ink IoU, mean cross-entropy."""
    pred = np.where(ink_logit > bg_logit, INK, BACKGROUND)
    pred_ink, true_ink = pred == INK, labels == INK
    union = np.count_nonzero(pred_ink | true_ink)
    iou = np.count_nonzero(pred_ink & true_ink) / union if union else 1.0
    own = np.where(labels == INK, ink_logit, bg_logit)
    loss = np.mean(np.logaddexp(ink_logit, bg_logit) - own)
    return {"acc": float(np.mean(pred == labels)), "iou": iou, "loss": float(loss), "pred_bg": float(np.mean(pred == BACKGROUND))}


def _dense_reference(model: ThresholdModel, labels: torch.Tensor) -> tuple[dict[str, float], np.ndarray]:
    """Loop over the stored picture: pixel (row r, col c) is at y = H - 1 - r, x = c."""
    h, w = labels.shape
    ink = np.zeros((h, w))
    bg = np.zeros((h, w))
    for r in range(h):
        for c in range(w):
            v = (h - 1 - r, c)[model.axis]
            d = model.k * (v - model.threshold)
            ink[r, c], bg[r, c] = -d, d
    prob_bg = 1 / (1 + np.exp(ink - bg))
    return _reference(ink, bg, labels.numpy()), prob_bg


def test_class_constants():
    assert (INK, BACKGROUND) == (0, 1)


# -- batch_metrics -----------------------------------------------------------------------


def test_batch_metrics_match_numpy():
    gen = torch.Generator().manual_seed(1)
    yx = torch.rand(200, 2, generator=gen) * torch.tensor([H - 1.0, W - 1.0])
    labels = torch.randint(0, 2, (200,), generator=gen)
    model = ThresholdModel(axis=1, threshold=2.5, k=0.7)
    out = batch_metrics(model, yx, labels, cross_entropy)
    assert set(out) == {"batch_acc", "batch_iou", "batch_loss", "batch_pred_bg"}
    d = 0.7 * (yx[:, 1].numpy().astype(np.float64) - 2.5)
    ref = _reference(-d, d, labels.numpy())
    assert out["batch_acc"] == pytest.approx(ref["acc"], abs=1e-12)
    assert out["batch_iou"] == pytest.approx(ref["iou"], abs=1e-12)
    assert out["batch_loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert out["batch_pred_bg"] == pytest.approx(ref["pred_bg"], abs=1e-12)
    assert 0 < out["batch_iou"] < 1 and 0 < out["batch_acc"] < 1  # a case that tells the metrics apart


def test_batch_metrics_hand_case():
    # Predictions by x < 2.5: ink, ink, background, background; truth: ink, background, ink, background.
    yx = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 3.0], [0.0, 4.0]])
    labels = torch.tensor([INK, BACKGROUND, INK, BACKGROUND])
    out = batch_metrics(ThresholdModel(axis=1, threshold=2.5), yx, labels, cross_entropy, prefix="eval_")
    assert out["eval_acc"] == 0.5
    assert out["eval_iou"] == pytest.approx(1 / 3)  # intersection {0}, union {0, 1, 2}


def test_iou_is_one_when_there_is_no_ink_anywhere():
    yx = torch.tensor([[0.0, 3.0], [2.0, 5.0]])
    labels = torch.full((2,), BACKGROUND)
    out = batch_metrics(ThresholdModel(axis=1, threshold=2.5), yx, labels, cross_entropy)
    assert out["batch_iou"] == 1.0
    assert out["batch_acc"] == 1.0
    dense, _ = dense_metrics(ThresholdModel(axis=1, threshold=-1.0), torch.full((H, W), BACKGROUND), cross_entropy)
    assert dense["dense_iou"] == 1.0
    assert dense["dense_acc"] == 1.0


def test_iou_is_zero_when_ink_is_all_missed():
    labels = torch.full((H, W), BACKGROUND)
    labels[:, 0] = INK
    dense, _ = dense_metrics(ThresholdModel(axis=1, threshold=-1.0), labels, cross_entropy)
    assert dense["dense_iou"] == 0.0
    assert dense["dense_acc"] == pytest.approx((W - 1) / W)


# -- dense_metrics --------------------------------------------------------------------------


@pytest.mark.parametrize("axis, threshold", [(1, 2.5), (0, 1.5), (1, 3.2)])
def test_dense_metrics_match_a_naive_loop(axis, threshold):
    labels = _labels(seed=axis)
    model = ThresholdModel(axis=axis, threshold=threshold, k=0.9)
    out, prob = dense_metrics(model, labels, cross_entropy)
    ref, ref_prob = _dense_reference(model, labels)
    assert set(out) == {"dense_acc", "dense_iou", "dense_loss", "dense_pred_bg"}
    assert out["dense_acc"] == pytest.approx(ref["acc"], abs=1e-12)
    assert out["dense_iou"] == pytest.approx(ref["iou"], abs=1e-12)
    assert out["dense_loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert out["dense_pred_bg"] == pytest.approx(ref["pred_bg"], abs=1e-12)
    assert prob.shape == (H, W)
    assert prob.dtype == np.float32
    np.testing.assert_allclose(prob, ref_prob, rtol=1e-5, atol=1e-6)


def test_dense_prediction_is_upright():
    # Ink where y > H - 2.5, i.e. the top two stored rows (y = H - 1 and H - 2).
    model = ThresholdModel(axis=0, threshold=H - 2.5, k=-1.0)
    labels = torch.full((H, W), BACKGROUND)
    labels[:2] = INK
    out, prob = dense_metrics(model, labels, cross_entropy)
    assert (prob[:2] < 0.5).all()
    assert (prob[2:] > 0.5).all()
    assert out["dense_acc"] == 1.0
    assert out["dense_iou"] == 1.0


def test_dense_prediction_columns_run_left_to_right():
    model = ThresholdModel(axis=1, threshold=1.5)  # ink in columns 0 and 1
    _, prob = dense_metrics(model, _labels(), cross_entropy)
    assert (prob[:, :2] < 0.5).all()
    assert (prob[:, 2:] > 0.5).all()
    # Probability of background rises strictly with x.
    assert (np.diff(prob, axis=1) > 0).all()


def test_dense_metrics_accept_uint8_labels():
    labels = _labels(seed=3)
    model = ThresholdModel(axis=1, threshold=2.5)
    a, pa = dense_metrics(model, labels, cross_entropy)
    b, pb = dense_metrics(model, labels.to(torch.uint8), cross_entropy)
    assert a == b
    assert np.array_equal(pa, pb)


def test_chunking_gives_identical_results(monkeypatch):
    labels = _labels(seed=4)
    whole_model = ThresholdModel(axis=1, threshold=2.5, k=0.6)
    whole, whole_prob = dense_metrics(whole_model, labels, cross_entropy)
    assert whole_model.batch_sizes == [H * W]

    monkeypatch.setattr(overfit.metrics, "DENSE_CHUNK", 7)
    chunked_model = ThresholdModel(axis=1, threshold=2.5, k=0.6)
    chunked, chunked_prob = dense_metrics(chunked_model, labels, cross_entropy)
    assert chunked_model.batch_sizes == [7, 7, 7, 7, 2]  # 30 pixels
    assert chunked["dense_acc"] == whole["dense_acc"]
    assert chunked["dense_iou"] == whole["dense_iou"]
    assert chunked["dense_loss"] == pytest.approx(whole["dense_loss"], rel=1e-6)
    assert np.array_equal(chunked_prob, whole_prob)


def test_metrics_run_without_autograd():
    class GradProbe(ThresholdModel):
        def forward(self, yx: torch.Tensor) -> torch.Tensor:
            self.grad_enabled = torch.is_grad_enabled()
            return super().forward(yx)

    model = GradProbe(axis=1, threshold=2.5)
    assert torch.is_grad_enabled()
    dense_metrics(model, _labels(), cross_entropy)
    assert model.grad_enabled is False
    model.grad_enabled = None
    batch_metrics(model, torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), cross_entropy)
    assert model.grad_enabled is False


# -- regression metrics -------------------------------------------------------------------------

from overfit.metrics import MAX_PSNR, dense_regression_metrics, psnr, ssim  # noqa: E402


def test_psnr_values():
    assert psnr(1.0) == 0.0
    assert psnr(0.01) == pytest.approx(20.0)
    assert psnr(1e-4) == pytest.approx(40.0)
    assert psnr(0.0) == MAX_PSNR


@pytest.mark.parametrize("shape", [(64, 80, 1), (40, 50, 3)])
def test_ssim_matches_scikit_image(shape):
    structural_similarity = pytest.importorskip("skimage.metrics").structural_similarity
    rng = np.random.default_rng(0)
    a = rng.random(shape)
    b = np.clip(a + rng.normal(0, 0.1, shape), 0, 1)
    ref = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0, channel_axis=2)
    assert ssim(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(ref, abs=1e-6)
    assert ssim(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(1.0)


class _Constant(torch.nn.Module):
    def __init__(self, value: list[float]) -> None:
        super().__init__()
        self.value = torch.tensor(value)

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        return self.value.expand(yx.shape[0], -1)


def test_dense_regression_metrics_of_a_constant_prediction():
    values = torch.zeros(10, 12, 3)
    values[:5] = 1.0  # top half white
    # Predicting 0.5 everywhere: squared error 0.25 on every value.
    record, picture = dense_regression_metrics(_Constant([0.5, 0.5, 0.5]), values)
    assert record["dense_loss"] == pytest.approx(0.25)
    assert record["dense_psnr"] == pytest.approx(10 * math.log10(4))
    assert picture.shape == (10, 12, 3) and np.all(picture == 0.5)
    # The PSNR is of the picture shown, clamped to [0, 1]; the loss is of the raw outputs.
    record, picture = dense_regression_metrics(_Constant([2.0]), torch.ones(4, 4, 1))
    assert record["dense_loss"] == pytest.approx(1.0)
    assert record["dense_psnr"] == MAX_PSNR
    assert picture.shape == (4, 4)
