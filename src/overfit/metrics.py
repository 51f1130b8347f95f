"""Evaluation on a batch or the dense grid of pixel centres.

Binary pictures: pixel accuracy, IoU of the ink class and loss. Gray and colour
pictures: MSE (the loss), PSNR and SSIM of the prediction clamped to [0, 1], i.e.
of the picture a viewer would see.

What each key means, and how it is shown, is in the metric registry (`metricinfo`).

Dense evaluation runs the model over every pixel centre in bounded chunks
under `torch.inference_mode`, so memory stays flat however large the picture.
Given a `sampling.Split` (held-out pixels), the same pass also reports the metrics
on the training pixels (`fit_*`) and on the test pixels (`test_*`); the `dense_*`
keys always mean every pixel. SSIM needs whole neighbourhoods, so the splits report
PSNR and the MSE loss only.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .coords import pixel_grid
from .losses import LossFn
# Prefixes of the metrics on the training pixels and on the held-out pixels of a split (the metric
# registry's scopes; not "train_": a record's `train_loss` is the mean loss of the training steps).
from .metricinfo import FIT, TEST
from .sampling import Split

INK, BACKGROUND = 0, 1
# Coordinates per forward pass in dense evaluation. Small enough that the activations
# (4096 x 256 floats, 4 MB) stay in cache-friendly, reused allocations: 65536 was 2.4x slower.
DENSE_CHUNK = 1 << 12


def background_probability(logits: torch.Tensor) -> torch.Tensor:
    """The binary output head: logits (n, 2) -> P(background) (n,), so ink shows dark as in the picture."""
    return torch.softmax(logits.float(), dim=1)[:, BACKGROUND]


def shown_values(out: torch.Tensor) -> torch.Tensor:
    """The regression output head: outputs (n, C) -> the values a viewer sees, clamped to [0, 1]."""
    return out.float().clamp(0.0, 1.0)


def _counts(logits: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
    """[n, correct, ink intersection, ink union, loss sum, predicted background] as float64 (no host sync)."""
    pred = logits.argmax(dim=1)
    pred_ink, true_ink = pred == INK, labels == INK
    return torch.stack([
        torch.tensor(float(labels.numel()), dtype=torch.float64, device=logits.device),
        (pred == labels).sum().double(),
        (pred_ink & true_ink).sum().double(),
        (pred_ink | true_ink).sum().double(),
        loss_fn(logits, labels).double() * labels.numel(),
        (pred == BACKGROUND).sum().double(),
    ])


def _summarise(c: torch.Tensor, prefix: str) -> dict[str, float]:
    n, correct, inter, union, loss_sum, pred_bg = c.tolist()
    return {
        f"{prefix}acc": correct / n,
        # No ink anywhere, predicted or true: a perfect match.
        f"{prefix}iou": inter / union if union > 0 else 1.0,
        f"{prefix}loss": loss_sum / n,
        # Near 0 or 1: the prediction has collapsed to all ink or all background.
        f"{prefix}pred_bg": pred_bg / n,
    }


@torch.inference_mode()
def batch_metrics(model: nn.Module, yx: torch.Tensor, labels: torch.Tensor, loss_fn: LossFn, prefix: str = "batch_") -> dict[str, float]:
    """Accuracy, ink IoU and mean loss of `model` on one batch of coordinates (N, 2)."""
    return _summarise(_counts(model(yx), labels, loss_fn), prefix)


def _masked_counts(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, loss_fn: LossFn) -> torch.Tensor:
    """`_counts` over the pixels of a chunk where `mask` (n,) is true; zeros where it holds none."""
    index = mask.nonzero().squeeze(1)
    if index.numel() == 0:
        return torch.zeros(6, dtype=torch.float64, device=logits.device)
    return _counts(logits[index], labels[index], loss_fn)


def _split_record(c: torch.Tensor, prefix: str) -> dict[str, float]:
    """Accuracy, ink IoU and loss of one split (the collapse indicator pred_bg is for the whole picture only)."""
    record = _summarise(c, prefix)
    del record[f"{prefix}pred_bg"]
    return record


@torch.inference_mode()
def dense_metrics(model: nn.Module, labels: torch.Tensor, loss_fn: LossFn, prefix: str = "dense_",
                  split: Split | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Metrics over every pixel of `labels` (H, W) and the prediction: (H, W) probability of background.

    With a `split`, also `fit_acc`, `fit_iou`, `fit_loss` over its training pixels and the
    same `test_*` over its test pixels, from the same forward pass.
    """
    height, width = labels.shape
    flat = labels.reshape(-1)
    total = torch.zeros(6, dtype=torch.float64, device=labels.device)
    parts = torch.zeros(2, 6, dtype=torch.float64, device=labels.device)  # training pixels, test pixels
    masks = (split.train.reshape(-1), split.test.reshape(-1)) if split is not None else ()
    prob = torch.empty(height * width, dtype=torch.float32, device=labels.device)
    # Coordinates and int64 labels exist one chunk at a time: memory beyond the picture stays bounded.
    for start in range(0, height * width, DENSE_CHUNK):
        end = start + DENSE_CHUNK
        logits = model(pixel_grid(height, width, labels.device, start, end))
        chunk = flat[start:end].long()
        total += _counts(logits, chunk, loss_fn)
        for i, mask in enumerate(masks):
            parts[i] += _masked_counts(logits, chunk, mask[start:end], loss_fn)
        prob[start:end] = background_probability(logits)
    record = _summarise(total, prefix)
    if split is not None:
        record.update(_split_record(parts[0], FIT))
        record.update(_split_record(parts[1], TEST))
    return record, prob.reshape(height, width).cpu().numpy()


# -- regression: gray and colour pictures ----------------------------------------

# PSNR of a perfect fit is infinite; report this instead so records stay plain JSON numbers.
MAX_PSNR = 100.0


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio in dB of values in [0, 1]: 10 log10(1 / mse), capped at MAX_PSNR."""
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else -10.0 * math.log10(mse)


def _gaussian_window(sigma: float = 1.5, radius: int = 5, device: torch.device | str = "cpu") -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float64, device=device)
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return w / w.sum()


def ssim(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean structural similarity of two pictures (H, W, C) in [0, 1], averaged over channels.

    Wang et al. 2004 with their constants: Gaussian window sigma 1.5 (11 taps),
    K1 = 0.01, K2 = 0.03, data range 1, population covariances, mean over the
    positions where the window fits inside the picture; the same numbers as
    scikit-image's `structural_similarity(..., gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=1)`. Pictures smaller than the window
    use a window cut to fit.
    """
    height, width = a.shape[:2]
    radius = max(0, min(5, (min(height, width) - 1) // 2))
    w = _gaussian_window(1.5, radius, a.device)
    x = a.double().permute(2, 0, 1)[:, None]  # (C, 1, H, W)
    y = b.double().permute(2, 0, 1)[:, None]

    def blur(t: torch.Tensor) -> torch.Tensor:
        t = F.conv2d(t, w.view(1, 1, -1, 1))
        return F.conv2d(t, w.view(1, 1, 1, -1))

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    c1, c2 = 0.01**2, 0.03**2
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


@torch.inference_mode()
def regression_batch_metrics(model: nn.Module, yx: torch.Tensor, values: torch.Tensor, prefix: str = "batch_") -> dict[str, float]:
    """MSE loss and PSNR of `model` on one batch: coordinates (N, 2), target values (N, C)."""
    out = model(yx).float()
    loss = float(F.mse_loss(out, values))
    shown = float(F.mse_loss(shown_values(out), values))
    return {f"{prefix}loss": loss, f"{prefix}psnr": psnr(shown)}


@torch.inference_mode()
def dense_regression_metrics(model: nn.Module, values: torch.Tensor, prefix: str = "dense_",
                             split: Split | None = None) -> tuple[dict[str, float], np.ndarray]:
    """Metrics over every pixel of `values` (H, W, C), and the prediction in [0, 1]: (H, W) for C = 1, else (H, W, C).

    With a `split`, also `fit_loss` (MSE of the outputs) and `fit_psnr` (of the values shown)
    over its training pixels, and the same `test_*` over its test pixels.
    """
    height, width, channels = values.shape
    flat = values.reshape(-1, channels)
    pred = torch.empty(height * width, channels, dtype=torch.float32, device=values.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=values.device)
    masks = (split.train.reshape(-1), split.test.reshape(-1)) if split is not None else ()
    part_loss = torch.zeros(2, dtype=torch.float64, device=values.device)  # training pixels, test pixels
    for start in range(0, height * width, DENSE_CHUNK):
        end = start + DENSE_CHUNK
        out = model(pixel_grid(height, width, values.device, start, end)).float()
        square = (out - flat[start:end]) ** 2
        loss_sum += square.sum().double()
        for i, mask in enumerate(masks):
            part_loss[i] += (square.sum(dim=1).double() * mask[start:end]).sum()
        pred[start:end] = shown_values(out)
    n = height * width * channels
    shown_mse = float(((pred - flat) ** 2).double().sum()) / n
    picture = pred.reshape(height, width, channels)
    record = {
        f"{prefix}loss": float(loss_sum) / n,
        f"{prefix}psnr": psnr(shown_mse),
        f"{prefix}ssim": ssim(picture, values),
    }
    if split is not None:
        shown_sq = ((pred - flat) ** 2).sum(dim=1).double()  # per pixel, of the values shown
        for i, (part, mask) in enumerate(((FIT, masks[0]), (TEST, masks[1]))):
            count = int(mask.sum()) * channels
            record[f"{part}loss"] = float(part_loss[i]) / count
            record[f"{part}psnr"] = psnr(float((shown_sq * mask).sum()) / count)
    array = picture.cpu().numpy()
    return record, array[:, :, 0] if channels == 1 else array
