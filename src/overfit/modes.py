"""The mode registry: what kind of picture a run fits, and everything that follows from it.

- `binary`: ink or background, as the original experiment: 2 logits, cross-entropy,
  accuracy and IoU of the ink class; shown as the probability of background.
- `gray`, `rgb`: pixel values in [0, 1]: 1 or 3 outputs, MSE, PSNR and SSIM; shown
  as the values clamped to [0, 1].

A `Mode` owns everything that differs by mode: how a picture becomes the tensor the run
learns (`target_array`), the sampler, the metrics, the output head that turns network
outputs into a displayable picture, the picture shown beside the prediction, the memory
each pixel costs (`PixelMemory`, read by budget.py), its headline metric (a key of the
metric registry, `metricinfo`), and the captions. Every other module asks the mode
instead of comparing its name.

To add a mode (say `sdf`, a signed distance to the ink): an entry in `MODES`, with a
`Mode` subclass whose methods name its own functions (the target's array here, a sampler
in sampling.py and metrics in metrics.py where the existing ones do not fit). Nothing else:
config, CLI choices, lab form, budget, training, recorder and reports pick it up.

Importing this module costs no torch import; the methods that compute import it. Those
imports point down (metrics, sampling), and neither imports config or this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import metricinfo

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from .losses import LossFn
    from .sampling import Split
    from .targets import Target

# SSIM over the whole picture works in float64: blurred moments and their combinations,
# about this many (H, W, C) float64 arrays at once (metrics.ssim; measured).
SSIM_ARRAYS = 20


@dataclass(frozen=True)
class PixelMemory:
    """Bytes a run of this mode holds per pixel of its picture, beyond what every mode holds (budget.py adds them up)."""

    target: int
    """The target's arrays on the host (beside the decoded picture) and its tensor on the device."""
    dense: int
    """The full-picture buffers of a dense evaluation: the prediction, its host copy, the metrics' arrays."""
    held_out: int = 0
    """What scoring a split's training and held-out pixels adds (data.holdout)."""


@dataclass(frozen=True)
class Mode:
    """One kind of picture. Subclasses implement the tensor work."""

    name: str
    description: str
    out_channels: int
    """Network outputs per coordinate."""
    picture_channels: int
    """Channels of the picture as fitted and of the displayable prediction: 1 (gray levels) or 3 (RGB)."""
    losses: tuple[str, ...]
    """Losses that fit this mode; the first is what `loss: auto` means."""
    headline: str
    """The evaluation record's key that sums a run up (the lab's curve, the progress bar): a `metricinfo` key."""
    memory: PixelMemory
    """Bytes per pixel (budget.py)."""
    shows_probability: bool
    """Whether the displayable prediction is a probability (drawn with a colour map) rather than pixel values."""
    prediction_name: str
    """How the displayable prediction is described in figures."""
    output_description: str
    """What an exported network gives, per coordinate."""
    display_glsl: tuple[str, ...]
    """The output head as GLSL lines: `{o}` is the vec4 array of outputs; they set `color`."""
    classes: tuple[str, ...] = ()
    """Names of the classes, where the targets are class indices (a batch is drawn by class, renders can be
    thresholded to classes); empty where they are values (drawn in their own colours)."""

    @property
    def color(self) -> bool:
        """Whether the picture is read in colour (3 channels) rather than as gray levels."""
        return self.picture_channels == 3

    @property
    def default_loss(self) -> str:
        return self.losses[0]

    @property
    def fit_headline(self) -> str:
        """The headline's key over the training pixels only, in a run with held-out pixels (`fit_acc`, `fit_psnr`)."""
        return metricinfo.scoped(self.headline, metricinfo.FIT)

    @property
    def test_headline(self) -> str:
        """The headline's key over the held-out pixels (`test_acc`, `test_psnr`): how well the fit generalises."""
        return metricinfo.scoped(self.headline, metricinfo.TEST)

    @property
    def headline_label(self) -> str:
        return metricinfo.info(self.headline).label

    def format_headline(self, value: float) -> str:
        return metricinfo.info(self.headline).format(value)

    def caption(self, preset: str, record: dict[str, Any]) -> str:
        """The text written on a progress frame; with held-out pixels, their headline too."""
        text = f"{preset}   step {record['step']:,}   {self.headline_label} {self.format_headline(record[self.headline])}"
        if self.test_headline in record:
            text += f"   held out {self.format_headline(record[self.test_headline])}"
        return text

    def summary(self, record: dict[str, Any]) -> str:
        """One line of a finished evaluation's main numbers."""
        raise NotImplementedError

    # -- the target ------------------------------------------------------------------

    def target_array(self, target: Target) -> np.ndarray:
        """What the run learns from a picture, on the host: (H, W) labels or (H, W, C) float32 values."""
        raise NotImplementedError

    def target_tensor(self, target: Target, device: torch.device | str) -> torch.Tensor:
        """What the sampler and the metrics compare against, on the device."""
        import torch

        return torch.from_numpy(self.target_array(target)).to(device)

    def target_picture(self, target: Target) -> np.ndarray:
        """The target as the prediction is shown beside it, in [0, 1] (or labels 0/1): (H, W) or (H, W, 3)."""
        values = self.target_array(target)
        return values[:, :, 0] if values.ndim == 3 and values.shape[2] == 1 else values

    def nothing_to_learn(self, target: Target) -> str | None:
        """Why the picture holds nothing to learn in this mode ('all ink (black)'), or None."""
        return None

    # -- training and evaluation ---------------------------------------------------------

    def display(self, out: torch.Tensor) -> torch.Tensor:
        """The output head: network outputs (n, out_channels) -> displayable values (n, picture_channels) in [0, 1]."""
        raise NotImplementedError

    def sampler(self, target: torch.Tensor, split: Split | None = None) -> Any:
        """Draws training and evaluation batches (coordinates, targets) from `target_tensor`; from the training pixels of `split` only."""
        raise NotImplementedError

    def batch_metrics(self, model: nn.Module, yx: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> dict[str, float]:
        raise NotImplementedError

    def dense_metrics(self, model: nn.Module, target: torch.Tensor, loss_fn: LossFn,
                      split: Split | None = None) -> tuple[dict[str, float], np.ndarray]:
        """Metrics over every pixel (`dense_*`; with a split also `fit_*` and `test_*`), and the displayable prediction: (H, W), or (H, W, 3) for colour."""
        raise NotImplementedError

    def _split_summary(self, record: dict[str, Any], names: tuple[tuple[str, str], ...]) -> str:
        """'; training pixels ..., held-out pixels ...' where the record has a split's metrics, else ''."""
        if self.test_headline not in record:
            return ""
        parts = []
        for scope in (metricinfo.FIT, metricinfo.TEST):
            where = metricinfo.SCOPES[scope].removeprefix("the ")
            parts.append(where + " " + ", ".join(fmt.format(record[metricinfo.scoped(key, scope)]) for key, fmt in names))
        return "; " + "; ".join(parts)


class Classification(Mode):
    """Ink (class 0) or background (class 1) from 2 logits."""

    def summary(self, record: dict[str, Any]) -> str:
        return (f"dense accuracy {record['dense_acc']:.4f}, ink IoU {record['dense_iou']:.4f}"
                + self._split_summary(record, (("dense_acc", "accuracy {:.4f}"), ("dense_iou", "ink IoU {:.4f}"))))

    def target_array(self, target: Target) -> np.ndarray:
        return target.labels  # (H, W) uint8, 0 = ink, 1 = background: 1 byte per pixel on the device

    def target_picture(self, target: Target) -> np.ndarray:
        return target.labels

    def nothing_to_learn(self, target: Target) -> str | None:
        if target.majority_rate < 1.0:
            return None
        return "background (white)" if target.background_fraction == 1.0 else "ink (black)"

    def display(self, out: torch.Tensor) -> torch.Tensor:
        from .metrics import background_probability

        return background_probability(out)[:, None]

    def sampler(self, target: torch.Tensor, split: Split | None = None) -> Any:
        from .sampling import Sampler

        return Sampler(target, split)

    def batch_metrics(self, model: nn.Module, yx: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> dict[str, float]:
        from .metrics import batch_metrics

        return batch_metrics(model, yx, y, loss_fn)

    def dense_metrics(self, model: nn.Module, target: torch.Tensor, loss_fn: LossFn,
                      split: Split | None = None) -> tuple[dict[str, float], np.ndarray]:
        from .metrics import dense_metrics

        return dense_metrics(model, target, loss_fn, split=split)


class Regression(Mode):
    """Pixel values in [0, 1], one output per channel."""

    def summary(self, record: dict[str, Any]) -> str:
        return (f"PSNR {record['dense_psnr']:.2f} dB, SSIM {record['dense_ssim']:.4f}"
                + self._split_summary(record, (("dense_psnr", "PSNR {:.2f} dB"),)))

    def target_array(self, target: Target) -> np.ndarray:
        return target.values  # (H, W, C) float32 in [0, 1]

    def display(self, out: torch.Tensor) -> torch.Tensor:
        from .metrics import shown_values

        return shown_values(out)

    def sampler(self, target: torch.Tensor, split: Split | None = None) -> Any:
        from .sampling import ValueSampler

        return ValueSampler(target, split)

    def batch_metrics(self, model: nn.Module, yx: torch.Tensor, y: torch.Tensor, loss_fn: LossFn) -> dict[str, float]:
        from .metrics import regression_batch_metrics

        return regression_batch_metrics(model, yx, y)

    def dense_metrics(self, model: nn.Module, target: torch.Tensor, loss_fn: LossFn,
                      split: Split | None = None) -> tuple[dict[str, float], np.ndarray]:
        from .metrics import dense_regression_metrics

        return dense_regression_metrics(model, target, split=split)


def _regression_memory(channels: int) -> PixelMemory:
    """Gray levels (and colours) plus labels on the host, float32 values on the host and the device; the
    prediction and its host copy, float64 squared errors and SSIM's arrays; a split's float64 squared errors."""
    return PixelMemory(target=2 + (3 if channels == 3 else 0) + 2 * 4 * channels,
                       dense=channels * (2 * 4 + 16 + SSIM_ARRAYS * 8), held_out=16)


_PSNR = dict(headline="dense_psnr", shows_probability=False, prediction_name="prediction", losses=("mse",))

MODES: dict[str, Mode] = {
    "binary": Classification("binary", "ink or background, as the original (cross-entropy, accuracy, IoU)", out_channels=2,
                             picture_channels=1, losses=("cross_entropy", "double_softmax"), headline="dense_acc",
                             # Labels and gray levels on the host, uint8 labels on the device; P(background) on the
                             # device, its host copy and the uint8 frame.
                             memory=PixelMemory(target=3, dense=2 * 4 + 1), shows_probability=True,
                             prediction_name="prediction (probability of background)", output_description="P(background) (N,)",
                             # softmax([l0, l1])[1] = 1 / (1 + exp(l0 - l1)): P(background), dark ink as in the picture.
                             display_glsl=("float p = 1.0 / (1.0 + exp({o}[0].x - {o}[0].y));", "color = vec4(p, p, p, 1.0);"),
                             classes=("ink", "background")),
    "gray": Regression("gray", "gray values in [0, 1] (MSE, PSNR, SSIM)", out_channels=1, picture_channels=1,
                       output_description="gray values (N, 1) clamped to [0, 1]", memory=_regression_memory(1),
                       display_glsl=("float g = clamp({o}[0].x, 0.0, 1.0);", "color = vec4(g, g, g, 1.0);"), **_PSNR),
    "rgb": Regression("rgb", "colour values in [0, 1] (MSE, PSNR, SSIM)", out_channels=3, picture_channels=3,
                      output_description="rgb values (N, 3) clamped to [0, 1]", memory=_regression_memory(3),
                      display_glsl=("color = vec4(clamp({o}[0].xyz, 0.0, 1.0), 1.0);",), **_PSNR),
}


def get_mode(name: str) -> Mode:
    """The registered mode `name` (config validation has already refused unknown names)."""
    return MODES[name]
