"""The mode registry: what kind of picture a run fits, and everything that follows from it.

- `binary`: ink or background, as the original experiment: 2 logits, cross-entropy,
  accuracy and IoU of the ink class; shown as the probability of background.
- `gray`, `rgb`: pixel values in [0, 1]: 1 or 3 outputs, MSE, PSNR and SSIM; shown
  as the values clamped to [0, 1].

Every module that behaves differently by mode asks the `Mode` here (channels, allowed
losses, sampler, metrics, headline metric, the output head that turns network outputs
into a displayable picture, captions) instead of branching on the mode's name. To add
a mode: a `Mode` subclass and an entry in `MODES`.

Importing this module costs no torch import; the methods that compute import it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from .losses import LossFn
    from .sampling import Split
    from .targets import Target


@dataclass(frozen=True)
class Mode:
    """One kind of picture. Subclasses implement the tensor work."""

    name: str
    description: str
    out_channels: int
    """Network outputs per coordinate."""
    picture_channels: int
    """Channels of the displayable prediction: 1 (gray levels) or 3 (RGB)."""
    losses: tuple[str, ...]
    """Losses that fit this mode; the first is what `loss: auto` means."""
    headline: str
    """The evaluation record's key that sums a run up (the lab's curve, the progress bar)."""
    headline_label: str
    headline_scale: float
    """The headline as shown = value * scale (accuracy in %), with `headline_digits` decimals and `headline_unit`."""
    headline_digits: int
    headline_unit: str
    headline_bounds: tuple[float, float] | None
    """Range of the headline's values, where it has one (for axes)."""
    shows_probability: bool
    """Whether the displayable prediction is a probability (drawn with a colour map) rather than pixel values."""
    prediction_name: str
    """How the displayable prediction is described in figures."""
    output_description: str
    """What an exported network gives, per coordinate."""
    display_glsl: tuple[str, ...]
    """The output head as GLSL lines: `{o}` is the vec4 array of outputs; they set `color`."""

    @property
    def color(self) -> bool:
        return self.picture_channels == 3

    @property
    def default_loss(self) -> str:
        return self.losses[0]

    @property
    def fit_headline(self) -> str:
        """The headline's key over the training pixels only, in a run with held-out pixels (`fit_acc`, `fit_psnr`)."""
        return "fit_" + self.headline.removeprefix("dense_")

    @property
    def test_headline(self) -> str:
        """The headline's key over the held-out pixels (`test_acc`, `test_psnr`): how well the fit generalises."""
        return "test_" + self.headline.removeprefix("dense_")

    def format_headline(self, value: float) -> str:
        return f"{value * self.headline_scale:.{self.headline_digits}f} {self.headline_unit}"

    def caption(self, preset: str, record: dict[str, Any]) -> str:
        """The text written on a progress frame; with held-out pixels, their headline too."""
        text = f"{preset}   step {record['step']:,}   {self.headline_label} {self.format_headline(record[self.headline])}"
        if self.test_headline in record:
            text += f"   held out {self.format_headline(record[self.test_headline])}"
        return text

    def summary(self, record: dict[str, Any]) -> str:
        """One line of a finished evaluation's main numbers."""
        raise NotImplementedError

    def display(self, out: torch.Tensor) -> torch.Tensor:
        """The output head: network outputs (n, out_channels) -> displayable values (n, picture_channels) in [0, 1]."""
        raise NotImplementedError

    def target_tensor(self, target: Target, device: torch.device | str) -> torch.Tensor:
        """What the sampler and the metrics compare against, on the device."""
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
        for prefix, where in (("fit_", "training pixels"), ("test_", "held-out pixels")):
            parts.append(where + " " + ", ".join(fmt.format(record[prefix + key]) for key, fmt in names))
        return "; " + "; ".join(parts)

    def target_picture(self, target: Target) -> np.ndarray:
        """The target as the prediction is shown beside it: (H, W) or (H, W, 3)."""
        raise NotImplementedError


class Classification(Mode):
    """Ink (class 0) or background (class 1) from 2 logits."""

    def summary(self, record: dict[str, Any]) -> str:
        return (f"dense accuracy {record['dense_acc']:.4f}, ink IoU {record['dense_iou']:.4f}"
                + self._split_summary(record, (("acc", "accuracy {:.4f}"), ("iou", "ink IoU {:.4f}"))))

    def display(self, out: torch.Tensor) -> torch.Tensor:
        from .metrics import background_probability

        return background_probability(out)[:, None]

    def target_tensor(self, target: Target, device: torch.device | str) -> torch.Tensor:
        import torch

        return torch.from_numpy(target.labels).to(device)  # (H, W) uint8: 1 byte per pixel

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

    def target_picture(self, target: Target) -> np.ndarray:
        return target.labels


class Regression(Mode):
    """Pixel values in [0, 1], one output per channel."""

    def summary(self, record: dict[str, Any]) -> str:
        return (f"PSNR {record['dense_psnr']:.2f} dB, SSIM {record['dense_ssim']:.4f}"
                + self._split_summary(record, (("psnr", "PSNR {:.2f} dB"),)))

    def display(self, out: torch.Tensor) -> torch.Tensor:
        from .metrics import shown_values

        return shown_values(out)

    def target_tensor(self, target: Target, device: torch.device | str) -> torch.Tensor:
        import torch

        return torch.from_numpy(target.values).to(device)  # (H, W, C) float32 in [0, 1]

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

    def target_picture(self, target: Target) -> np.ndarray:
        values = target.values
        return values[:, :, 0] if values.shape[2] == 1 else values


_PSNR = dict(headline="dense_psnr", headline_label="PSNR", headline_scale=1.0, headline_digits=2, headline_unit="dB",
             headline_bounds=None, shows_probability=False, prediction_name="prediction", losses=("mse",))

MODES: dict[str, Mode] = {
    "binary": Classification("binary", "ink or background, as the original (cross-entropy, accuracy, IoU)", out_channels=2,
                             picture_channels=1, losses=("cross_entropy", "double_softmax"), headline="dense_acc",
                             headline_label="accuracy", headline_scale=100.0, headline_digits=1, headline_unit="%",
                             headline_bounds=(0.0, 1.0), shows_probability=True,
                             prediction_name="prediction (probability of background)", output_description="P(background) (N,)",
                             # softmax([l0, l1])[1] = 1 / (1 + exp(l0 - l1)): P(background), dark ink as in the picture.
                             display_glsl=("float p = 1.0 / (1.0 + exp({o}[0].x - {o}[0].y));", "color = vec4(p, p, p, 1.0);")),
    "gray": Regression("gray", "gray values in [0, 1] (MSE, PSNR, SSIM)", out_channels=1, picture_channels=1,
                       output_description="gray values (N, 1) clamped to [0, 1]",
                       display_glsl=("float g = clamp({o}[0].x, 0.0, 1.0);", "color = vec4(g, g, g, 1.0);"), **_PSNR),
    "rgb": Regression("rgb", "colour values in [0, 1] (MSE, PSNR, SSIM)", out_channels=3, picture_channels=3,
                      output_description="rgb values (N, 3) clamped to [0, 1]",
                      display_glsl=("color = vec4(clamp({o}[0].xyz, 0.0, 1.0), 1.0);",), **_PSNR),
}


def get_mode(name: str) -> Mode:
    """The registered mode `name` (config validation has already refused unknown names)."""
    return MODES[name]
