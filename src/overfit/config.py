"""The run configuration: one frozen dataclass tree whose canonical form is JSON.

The same JSON is written into every run folder (`config.json`), read back by
`overfit train --config` and `--resume`, and sent to and from the lab. Every
section validates itself on construction, so an invalid value can never reach the
training loop; names (activations, encodings, losses, modes) are checked against
their registries. Conversion to and from JSON and command-line strings lives in
`configio`; help and form metadata in `fields`.

Importing this module costs no torch import.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from . import configio
from .activations import ACTIVATIONS
from .encodings import ENCODINGS
from .errors import ConfigError
from .limits import LIMITS, most
from .losses import LOSSES
from .modes import MODES

__all__ = ["ConfigError", "DataConfig", "EncodingConfig", "ModelConfig", "OptimConfig", "RunConfig", "ScheduleConfig"]

INIT_NAMES = ("original", "torch")
PRECISIONS = ("fp32", "bf16")
# What a resumed run may change: how long it trains and where (never what it is).
RESUMABLE = ("schedule.steps", "device", "compile", "precision", "tensorboard")
LOSS_NAMES = ("auto",) + tuple(LOSSES)

# Default canvas of the built-in target: the original experiment's picture size.
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1000, 300
DEFAULT_MAX_PIXELS = 50_000_000
# The largest values a config may hold are in `limits.LIMITS` (with the reason for each).
MAX_STEPS = most("steps")
MAX_FONT_SIZE = most("font_size")
# A font size at most this many times the canvas's longer side (where the auto size stops
# searching: a glyph is then already larger than the canvas).
FONT_SIZE_PER_SIDE = 4
MAX_EVAL_BATCH = most("eval_batch_size")
MAX_EVALUATIONS = most("evaluations")


def _is_unicode(text: str) -> bool:
    """Whether `text` is real Unicode text (no lone surrogates, which a byte string decoded with surrogateescape holds)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=name)


def _field(default: Any, doc: str) -> Any:
    """A dataclass field with its documentation kept as metadata, so help texts need no source files."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults need a default_factory")
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class DataConfig:
    """What picture to fit."""

    text: str = _field("OVERFIT", "Text rendered black on white (bold DejaVu Sans); '\\n' starts a new line. Ignored when `image` is set.")
    image: str | None = _field(None, 'Path of a picture to fit instead of text (PNG, JPEG, BMP, GIF, WebP, TIFF; any mode).')
    width: int = _field(DEFAULT_WIDTH, 'Canvas width in pixels for rendered text.')
    height: int = _field(DEFAULT_HEIGHT, 'Canvas height in pixels for rendered text.')
    font_size: int | None = _field(None, 'Font size in pixels for rendered text; None picks the largest size that fills the canvas.')
    max_pixels: int = _field(DEFAULT_MAX_PIXELS, 'Largest picture accepted, in pixels; guards against absurd sizes.')
    mode: str = _field("binary", "'binary': ink or background, as the original (cross-entropy, accuracy, IoU); 'gray' or 'rgb': pixel values in [0, 1] (MSE, PSNR, SSIM).")
    holdout: str = _field("none", "Pixels kept out of training and scored separately (test_* beside fit_* in each evaluation): "
                                  "'none' (train on every pixel); 'checkerboard' (Tancik et al. 2020: train on even rows and even "
                                  "columns, test on odd rows and odd columns); or a fraction such as 0.25 held out at random, seeded by `seed`.")

    def __post_init__(self) -> None:
        _require(self.mode in MODES, "data.mode", f"unknown mode {self.mode!r}; choose from {', '.join(MODES)}")
        _require(isinstance(self.holdout, str), "data.holdout",
                 f"expected a string ('none', 'checkerboard' or a fraction such as '0.25'), got {self.holdout!r}")
        DataConfig.holdout_fraction(self.holdout)  # refuses anything else, naming data.holdout
        if self.image is None:
            _require(self.text.strip() != "", "data.text", "is empty; give some text to render")
            _require(_is_unicode(self.text), "data.text", "holds bytes that are not text (a lone surrogate); give UTF-8 text")
        else:
            _require(self.image.strip() != "", "data.image", "is an empty path")
        _require(self.width >= 2, "data.width", f"must be at least 2 pixels, got {self.width}")
        _require(self.height >= 2, "data.height", f"must be at least 2 pixels, got {self.height}")
        _require(self.font_size is None or self.font_size > 0, "data.font_size", f"must be positive, got {self.font_size}")
        if self.font_size is not None:
            LIMITS["font_size"].check(self.font_size)
        _require(self.max_pixels >= 4, "data.max_pixels", f"must be at least 4, got {self.max_pixels}")
        if self.image is None:
            _require(
                self.width * self.height <= self.max_pixels,
                "data.width",
                f"{self.width} x {self.height} is larger than data.max_pixels = {self.max_pixels}",
            )
            fits = FONT_SIZE_PER_SIDE * max(self.width, self.height)
            _require(self.font_size is None or self.font_size <= fits, "data.font_size",
                     f"{self.font_size} is larger than a {self.width} x {self.height} canvas warrants (at most {fits})")

    @staticmethod
    def holdout_fraction(holdout: str) -> float | None:
        """The share of pixels a `holdout` value holds out at random; None for 'none' and 'checkerboard'.

        A ConfigError naming data.holdout for anything but those names or a number in (0, 1).
        """
        if holdout in ("none", "checkerboard"):
            return None
        try:
            fraction = float(holdout)
        except ValueError:
            fraction = math.nan
        _require(0.0 < fraction < 1.0, "data.holdout",  # nan fails too
                 f"must be 'none', 'checkerboard' or a fraction of pixels in (0, 1) such as 0.25, got {configio.short_repr(holdout)}")
        return fraction


@dataclass(frozen=True)
class ModelConfig:
    """The coordinate network: input scaling, then an MLP to 2 logits."""

    input_range: float | None = _field(1.0, 'Affine scaling of (y, x) to [-r, r] per axis as r * (v / (size // 2) - 1); None feeds raw pixel units.')
    hidden: tuple[int, ...] = _field((64, 256, 64), 'Widths of the hidden layers.')
    activation: str = _field("relu", 'Activation after each hidden layer (see `overfit.activations`): relu, tanh, cos, siren, ...')
    batchnorm: bool = _field(False, 'BatchNorm after each hidden Linear (Linear -> BatchNorm -> activation).')
    init: str = _field("original", "'original': weights ~ N(0, 1/fan_in), zero biases (MegEngine's Linear); 'torch': PyTorch's default. The siren activation always uses SIREN's own init.")
    w0: float = _field(30.0, 'Frequency factor of the siren activation, sin(w0 x) (SIREN sec. 3.2: 30); the width a of gauss, exp(-(a x)^2).')

    def __post_init__(self) -> None:
        _require(math.isfinite(self.w0) and self.w0 > 0, "model.w0", f"must be a positive number, got {self.w0}")
        r = self.input_range
        _require(r is None or (math.isfinite(r) and r > 0), "model.input_range", f"must be a positive number or none, got {r}")
        _require(len(self.hidden) >= 1, "model.hidden", "needs at least one hidden layer")
        _require(all(w >= 1 for w in self.hidden), "model.hidden", f"widths must be positive, got {list(self.hidden)}")
        LIMITS["hidden_layers"].check(len(self.hidden))
        LIMITS["hidden_width"].check(max(self.hidden))
        _require(self.activation in ACTIVATIONS, "model.activation", f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATIONS)}")
        _require(self.init in INIT_NAMES, "model.init", f"unknown init {self.init!r}; choose from {', '.join(INIT_NAMES)}")


@dataclass(frozen=True)
class EncodingConfig:
    """How scaled coordinates are encoded before the MLP (tiny-cuda-nn's `encoding` section).

    The fields of every encoding, one flat section: each registry entry (`encodings.ENCODINGS`)
    names the fields it reads, checks them and sizes itself from them.
    """

    kind: str = _field("none", "'none' (the scaled coordinates), 'fourier' (random Fourier features), 'positional' (NeRF's 2^k frequencies) or 'grid' (multiresolution hash grid).")
    features: int = _field(256, 'fourier: number of random frequencies B (Tancik et al. 2020: 256); the encoding has 2x this many outputs.')
    sigma: float = _field(10.0, 'fourier: standard deviation of B, in cycles per unit of scaled input (Tancik et al.: 10 for photographs, 14 for text).')
    frequencies: int = _field(10, 'positional: number of octaves L; frequencies 2^k pi for k < L (NeRF uses 10).')
    levels: int = _field(16, 'grid: number of resolution levels (instant-NGP: 16).')
    features_per_level: int = _field(2, 'grid: features stored per grid vertex and level (instant-NGP: 2).')
    log2_hashmap_size: int = _field(19, 'grid: a level with more vertices than 2^this is hashed into a table of 2^this entries (instant-NGP: 15 to 19).')
    base_resolution: int = _field(16, "grid: cells along the picture's longer side at the coarsest level (instant-NGP: 16).")
    per_level_scale: float | None = _field(None, 'grid: resolution growth per level; none makes the finest level one cell per pixel (instant-NGP images: 1.5 to 2).')

    def __post_init__(self) -> None:
        _require(self.kind in ENCODINGS, "encoding.kind", f"unknown encoding {self.kind!r}; choose from {', '.join(ENCODINGS)}")
        # Each encoding checks the fields it reads (`encodings.Encoding.check`); all of them run, so every field
        # holds a valid value whichever encoding is chosen (the lab's form switches kinds and keeps the rest).
        for encoding in ENCODINGS.values():
            encoding.check(self)


@dataclass(frozen=True)
class OptimConfig:
    """Adam and its minibatches."""

    lr: float = _field(1e-4, "Adam learning rate (the original's 1e-4).")
    batch_size: int = _field(1024, 'Random coordinates per training step.')
    beta1: float = _field(0.9, "Adam's first-moment decay.")
    beta2: float = _field(0.999, "Adam's second-moment decay.")
    eps: float = _field(1e-8, "Adam's denominator epsilon.")
    lr_final: float | None = _field(None, 'Learning rate reached by exponential decay from lr at step lr_decay_steps (then kept); none keeps lr constant (the original).')
    lr_decay_steps: int | None = _field(None, 'Steps over which lr decays to lr_final; none: schedule.steps, fixed into the run\'s config when it starts, so a resumed or extended run keeps its schedule.')

    def __post_init__(self) -> None:
        _require(math.isfinite(self.lr) and self.lr > 0, "optim.lr", f"must be a positive number, got {self.lr}")
        _require(self.batch_size >= 1, "optim.batch_size", f"must be at least 1, got {self.batch_size}")
        LIMITS["batch_size"].check(self.batch_size)
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            _require(0 <= v < 1, f"optim.{name}", f"must be in [0, 1), got {v}")
        _require(math.isfinite(self.eps) and self.eps > 0, "optim.eps", f"must be positive, got {self.eps}")
        f = self.lr_final
        _require(f is None or (math.isfinite(f) and 0 < f <= self.lr), "optim.lr_final", f"must be a positive number no larger than optim.lr, or none; got {f}")
        d = self.lr_decay_steps
        _require(d is None or 1 <= d <= MAX_STEPS, "optim.lr_decay_steps", f"must be between 1 and {MAX_STEPS}, or none; got {d}")

    def lr_at(self, step: int, steps: int) -> float:
        """The rate of the update that follows `step` completed steps, in a run of `steps` steps.

        Exponential decay from lr, reaching lr_final exactly at the lr_decay_steps-th update
        (or the last one) and staying there; a function of the step alone, so resuming is exact.
        """
        if self.lr_final is None:
            return self.lr
        horizon = self.lr_decay_steps or steps
        t = 1.0 if horizon <= 1 else min(step, horizon - 1) / (horizon - 1)
        return self.lr * (self.lr_final / self.lr) ** t


@dataclass(frozen=True)
class ScheduleConfig:
    """How long to train and how often to look."""

    steps: int = _field(100_000, "Training steps (the original's 100000).")
    eval_every: int = _field(2000, 'Evaluate (batch of eval_batch_size and the dense pixel grid) every this many steps, and at the last step.')
    eval_every_late: int | None = _field(None, 'From step eval_late_from on, evaluate every this many steps instead (dense early, when a run changes fast; sparse late); none keeps eval_every.')
    eval_late_from: int = _field(0, 'The step from which eval_every_late applies.')
    eval_batch_size: int = _field(4096, "Random coordinates in each evaluation batch (the original's scatter view).")
    log_every: int = _field(100, 'Read the training loss back from the device every this many steps (progress bar, divergence check).')

    def __post_init__(self) -> None:
        _require(self.steps >= 1, "schedule.steps", f"must be at least 1, got {self.steps}")
        LIMITS["steps"].check(self.steps)
        _require(self.eval_every >= 1, "schedule.eval_every", f"must be at least 1, got {self.eval_every}")
        late = self.eval_every_late
        _require(late is None or late >= 1, "schedule.eval_every_late", f"must be at least 1, or none; got {late}")
        _require(self.eval_late_from >= 0, "schedule.eval_late_from", f"must be non-negative, got {self.eval_late_from}")
        _require(self.eval_batch_size >= 1, "schedule.eval_batch_size", f"must be at least 1, got {self.eval_batch_size}")
        LIMITS["eval_batch_size"].check(self.eval_batch_size)
        _require(self.log_every >= 1, "schedule.log_every", f"must be at least 1, got {self.log_every}")
        count = self.evaluation_count()
        if count > MAX_EVALUATIONS:
            # Blame the interval that makes most of them.
            late = self.eval_every_late is not None and self.eval_late_from < self.steps
            late_count = (self.steps - self.eval_late_from) // self.eval_every_late if late else 0  # type: ignore[operator]
            key = "schedule.eval_every_late" if late_count > count - late_count else "schedule.eval_every"
            LIMITS["evaluations"].check(count, field=key)

    def evaluates_at(self, step: int) -> bool:
        """Whether the run evaluates after `step` steps: every eval_every (every eval_every_late from eval_late_from on), and at the end."""
        if step == self.steps:
            return True
        if self.eval_every_late is not None and step > self.eval_late_from:
            return (step - self.eval_late_from) % self.eval_every_late == 0
        return step % self.eval_every == 0

    def evaluation_count(self) -> int:
        """len(evaluation_steps()), counted without listing them."""
        if self.eval_every_late is None or self.eval_late_from >= self.steps:
            count, last = self.steps // self.eval_every + 1, self.steps // self.eval_every * self.eval_every
        else:
            early = self.eval_late_from // self.eval_every
            late = (self.steps - self.eval_late_from) // self.eval_every_late
            count = early + 1 + late
            last = self.eval_late_from + late * self.eval_every_late if late else early * self.eval_every
        return count if last == self.steps else count + 1

    def evaluation_steps(self) -> list[int]:
        """Every step at which the run evaluates, 0 (the untrained network) included."""
        if self.eval_every_late is None or self.eval_late_from >= self.steps:
            steps = list(range(0, self.steps + 1, self.eval_every))
        else:
            steps = list(range(0, self.eval_late_from + 1, self.eval_every))
            steps += range(self.eval_late_from + self.eval_every_late, self.steps + 1, self.eval_every_late)
        return steps if steps[-1] == self.steps else steps + [self.steps]


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. `RunConfig()` is the original recipe (`relu_1`) on the built-in OVERFIT."""

    preset: str = _field("relu_1", 'Name of the preset this config started from (a label; the fields below are what count).')
    seed: int = _field(0, 'Seeds initialisation, training batches and evaluation batches: same seed, same machine, same numbers.')
    loss: str = _field("auto", "'auto' (cross_entropy for binary, mse for gray and rgb), 'cross_entropy' on logits, 'double_softmax' (softmax, then cross-entropy on logits, as the original code did) or 'mse'.")
    device: str = _field("cpu", 'Torch device: cpu, cuda, cuda:1, mps.')
    compile: bool = _field(False, 'torch.compile the forward and backward pass: faster steps after a one-off compile of seconds; falls back to eager where no compiler works.')
    precision: str = _field("fp32", "'fp32', or 'bf16': matmuls in bfloat16 (autocast) with float32 weights, gradients and optimizer state; only where the device has native bf16.")
    tensorboard: bool = _field(False, "Also write TensorBoard event files into the run folder's tensorboard/ at each evaluation (scalars, prediction, "
                                      "weight and gradient histograms, config and hparams); needs the tensorboard package.")
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        _require(self.preset.strip() != "", "preset", "is empty")
        _require(self.seed >= 0, "seed", f"must be non-negative, got {self.seed}")
        _require(self.loss in LOSS_NAMES, "loss", f"unknown loss {self.loss!r}; choose from {', '.join(LOSS_NAMES)}")
        _require(self.device.strip() != "", "device", "is empty")
        _require(self.precision in PRECISIONS, "precision", f"unknown precision {self.precision!r}; choose from {', '.join(PRECISIONS)}")
        mode = MODES[self.data.mode]
        _require(self.loss_name in mode.losses, "loss", f"{self.loss!r} does not fit data.mode {mode.name}; use {' or '.join(mode.losses)}")
        if ENCODINGS[self.encoding.kind].needs_scaled_inputs:
            _require(self.model.input_range is not None, "model.input_range",
                     f"the {self.encoding.kind} encoding needs scaled inputs; set a number (1 maps the picture onto the whole grid)")
        # BatchNorm in training mode needs two values per channel to take a standard deviation.
        _require(not self.model.batchnorm or self.optim.batch_size >= 2, "optim.batch_size",
                 f"must be at least 2 with model.batchnorm, got {self.optim.batch_size}")

    @property
    def loss_name(self) -> str:
        """The loss actually used: `loss`, with 'auto' resolved by the mode."""
        return MODES[self.data.mode].default_loss if self.loss == "auto" else self.loss

    @property
    def out_channels(self) -> int:
        """Network outputs: 2 logits (binary) or one value per colour channel."""
        return MODES[self.data.mode].out_channels

    def pinned(self) -> RunConfig:
        """This config with what `None` resolves to when a run starts written in, so extending the run later keeps it.

        Today: `optim.lr_decay_steps` becomes `schedule.steps` where the rate decays.
        """
        if self.optim.lr_final is None or self.optim.lr_decay_steps is not None:
            return self
        return dataclasses.replace(self, optim=dataclasses.replace(self.optim, lr_decay_steps=self.schedule.steps))

    # -- JSON ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return configio.to_jsonable(self)

    def _repr_html_(self) -> str:
        """A notebook's view: every field by its dotted name, those that differ from the defaults in bold."""
        return configio.fields_html(self.to_dict(), RunConfig().to_dict(), f"RunConfig: {self.preset or 'custom'}")

    def to_json(self) -> str:
        import json

        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        return configio.from_dict(cls, data, prefix="")

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        return cls.from_dict(configio.loads(text))

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """Return a copy with dotted keys replaced: `{"model.activation": "tanh", "seed": "3"}`.

        String values are parsed by the field's type (`"64,256,64"` for a tuple of
        ints, `"none"` for None, `"true"`/`"false"` for booleans); other values must
        already have the right type.

        The order of the overrides does not matter: a value refused only because of a field
        that a later override changes (a limit across fields, as schedule.eval_every against
        schedule.steps, or data.width against data.max_pixels) is set again after the others.
        """
        cfg, pending = self, list(overrides.items())
        while pending:
            refused: list[tuple[str, Any, ConfigError]] = []
            for key, value in pending:
                try:
                    cfg = configio.replace_path(cfg, key.split("."), value, key)
                except ConfigError as e:
                    refused.append((key, value, e))
            if len(refused) == len(pending):  # no progress: the first refusal stands
                raise refused[0][2]
            pending = [(key, value) for key, value, _ in refused]
        return cfg
