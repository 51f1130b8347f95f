"""The run configuration: one frozen dataclass tree whose canonical form is JSON.

The same JSON is written into every run folder (`config.json`), read back by
`overfit train --config` and `--resume`, and shared with the other tools. Every
sub-config validates itself on construction, so an invalid value can never
reach the training loop; `from_dict` refuses unknown keys and wrong types, and
`with_overrides` parses the CLI's string values (`model.activation=tanh`) by the
field's declared type.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from .activations import ACTIVATIONS
from .encodings import ENCODINGS
from .errors import OverfitError
from .losses import LOSSES


class ConfigError(OverfitError, ValueError):
    """A config value, key or type that overfit refuses; the message names the field."""


ACTIVATION_NAMES = tuple(ACTIVATIONS)
INIT_NAMES = ("original", "torch")
LOSS_NAMES = ("auto",) + tuple(LOSSES)
ENCODING_NAMES = tuple(ENCODINGS)
# binary: classes ink/background (cross-entropy); gray and rgb: pixel values in [0, 1] (regression).
MODES = ("binary", "gray", "rgb")
CHANNELS = {"gray": 1, "rgb": 3}
BINARY_LOSSES = ("cross_entropy", "double_softmax")
REGRESSION_LOSSES = ("mse",)

# Default canvas of the built-in target: the original experiment's picture size.
DEFAULT_WIDTH, DEFAULT_HEIGHT = 1000, 300
DEFAULT_MAX_PIXELS = 50_000_000


def _require(ok: bool, name: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{name}: {message}")


@dataclass(frozen=True)
class DataConfig:
    """What picture to fit."""

    text: str = "OVERFIT"
    """Text rendered black on white (bold DejaVu Sans); '\\n' starts a new line. Ignored when `image` is set."""
    image: str | None = None
    """Path of a picture to fit instead of text (PNG, JPEG, BMP, GIF, WebP, TIFF; any mode)."""
    width: int = DEFAULT_WIDTH
    """Canvas width in pixels for rendered text."""
    height: int = DEFAULT_HEIGHT
    """Canvas height in pixels for rendered text."""
    font_size: int | None = None
    """Font size in pixels for rendered text; None picks the largest size that fills the canvas."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    """Largest picture accepted, in pixels; guards against absurd sizes."""
    mode: str = "binary"
    """'binary': ink or background, as the original (cross-entropy, accuracy, IoU); 'gray' or 'rgb': pixel values in [0, 1] (MSE, PSNR, SSIM)."""

    def __post_init__(self) -> None:
        _require(self.mode in MODES, "data.mode", f"unknown mode {self.mode!r}; choose from {', '.join(MODES)}")
        if self.image is None:
            _require(self.text.strip() != "", "data.text", "is empty; give some text to render")
        else:
            _require(self.image.strip() != "", "data.image", "is an empty path")
        _require(self.width >= 2, "data.width", f"must be at least 2 pixels, got {self.width}")
        _require(self.height >= 2, "data.height", f"must be at least 2 pixels, got {self.height}")
        _require(self.font_size is None or self.font_size > 0, "data.font_size", f"must be positive, got {self.font_size}")
        _require(self.max_pixels >= 4, "data.max_pixels", f"must be at least 4, got {self.max_pixels}")
        if self.image is None:
            _require(
                self.width * self.height <= self.max_pixels,
                "data.width",
                f"{self.width} x {self.height} is larger than data.max_pixels = {self.max_pixels}",
            )


@dataclass(frozen=True)
class ModelConfig:
    """The coordinate network: input scaling, then an MLP to 2 logits."""

    input_range: float | None = 1.0
    """Affine scaling of (y, x) to [-r, r] per axis as r * (v / (size // 2) - 1); None feeds raw pixel units."""
    hidden: tuple[int, ...] = (64, 256, 64)
    """Widths of the hidden layers."""
    activation: str = "relu"
    """Activation after each hidden layer: one of relu, tanh, cos, sin, gelu, sigmoid, leaky_relu."""
    batchnorm: bool = False
    """BatchNorm after each hidden Linear (Linear -> BatchNorm -> activation)."""
    init: str = "original"
    """'original': weights ~ N(0, 1/fan_in), zero biases (MegEngine's Linear); 'torch': PyTorch's default. The siren activation always uses SIREN's own init."""
    w0: float = 30.0
    """Frequency factor of the siren activation, sin(w0 x) (SIREN sec. 3.2: 30); the width a of gauss, exp(-(a x)^2)."""

    def __post_init__(self) -> None:
        _require(math.isfinite(self.w0) and self.w0 > 0, "model.w0", f"must be a positive number, got {self.w0}")
        r = self.input_range
        _require(r is None or (math.isfinite(r) and r > 0), "model.input_range", f"must be a positive number or none, got {r}")
        _require(len(self.hidden) >= 1, "model.hidden", "needs at least one hidden layer")
        _require(all(w >= 1 for w in self.hidden), "model.hidden", f"widths must be positive, got {list(self.hidden)}")
        _require(all(w <= 65536 for w in self.hidden), "model.hidden", f"widths above 65536 are refused, got {list(self.hidden)}")
        _require(self.activation in ACTIVATION_NAMES, "model.activation", f"unknown activation {self.activation!r}; choose from {', '.join(ACTIVATION_NAMES)}")
        _require(self.init in INIT_NAMES, "model.init", f"unknown init {self.init!r}; choose from {', '.join(INIT_NAMES)}")


@dataclass(frozen=True)
class EncodingConfig:
    """How scaled coordinates are encoded before the MLP (tiny-cuda-nn's `encoding` section)."""

    kind: str = "none"
    """'none' (the scaled coordinates), 'fourier' (random Fourier features), 'positional' (NeRF's 2^k frequencies) or 'grid' (multiresolution hash grid)."""
    features: int = 256
    """fourier: number of random frequencies B (Tancik et al. 2020: 256); the encoding has 2x this many outputs."""
    sigma: float = 10.0
    """fourier: standard deviation of B, in cycles per unit of scaled input (Tancik et al.: 10 for photographs, 14 for text)."""
    frequencies: int = 10
    """positional: number of octaves L; frequencies 2^k pi for k < L (NeRF uses 10)."""
    levels: int = 16
    """grid: number of resolution levels (instant-NGP: 16)."""
    features_per_level: int = 2
    """grid: features stored per grid vertex and level (instant-NGP: 2)."""
    log2_hashmap_size: int = 19
    """grid: a level with more vertices than 2^this is hashed into a table of 2^this entries (instant-NGP: 15 to 19)."""
    base_resolution: int = 16
    """grid: cells along the picture's longer side at the coarsest level (instant-NGP: 16)."""
    per_level_scale: float | None = None
    """grid: resolution growth per level; none makes the finest level one cell per pixel (instant-NGP images: 1.5 to 2)."""

    def __post_init__(self) -> None:
        _require(self.kind in ENCODING_NAMES, "encoding.kind", f"unknown encoding {self.kind!r}; choose from {', '.join(ENCODING_NAMES)}")
        _require(1 <= self.features <= 65536, "encoding.features", f"must be between 1 and 65536, got {self.features}")
        _require(math.isfinite(self.sigma) and self.sigma > 0, "encoding.sigma", f"must be a positive number, got {self.sigma}")
        _require(1 <= self.frequencies <= 30, "encoding.frequencies", f"must be between 1 and 30, got {self.frequencies}")
        _require(1 <= self.levels <= 32, "encoding.levels", f"must be between 1 and 32, got {self.levels}")
        _require(1 <= self.features_per_level <= 16, "encoding.features_per_level", f"must be between 1 and 16, got {self.features_per_level}")
        _require(8 <= self.log2_hashmap_size <= 26, "encoding.log2_hashmap_size", f"must be between 8 and 26, got {self.log2_hashmap_size}")
        _require(self.base_resolution >= 1, "encoding.base_resolution", f"must be at least 1, got {self.base_resolution}")
        s = self.per_level_scale
        _require(s is None or (math.isfinite(s) and s >= 1.0), "encoding.per_level_scale", f"must be a number >= 1 or none, got {s}")


@dataclass(frozen=True)
class OptimConfig:
    """Adam and its minibatches."""

    lr: float = 1e-4
    """Adam learning rate (the original's 1e-4)."""
    batch_size: int = 1024
    """Random coordinates per training step."""
    beta1: float = 0.9
    """Adam's first-moment decay."""
    beta2: float = 0.999
    """Adam's second-moment decay."""
    eps: float = 1e-8
    """Adam's denominator epsilon."""
    lr_final: float | None = None
    """Learning rate at the last step, reached by exponential decay from lr; none keeps lr constant (the original)."""

    def __post_init__(self) -> None:
        _require(math.isfinite(self.lr) and self.lr > 0, "optim.lr", f"must be a positive number, got {self.lr}")
        _require(self.batch_size >= 1, "optim.batch_size", f"must be at least 1, got {self.batch_size}")
        _require(self.batch_size <= 1 << 24, "optim.batch_size", f"{self.batch_size} is absurdly large (limit {1 << 24})")
        for name in ("beta1", "beta2"):
            v = getattr(self, name)
            _require(0 <= v < 1, f"optim.{name}", f"must be in [0, 1), got {v}")
        _require(math.isfinite(self.eps) and self.eps > 0, "optim.eps", f"must be positive, got {self.eps}")
        f = self.lr_final
        _require(f is None or (math.isfinite(f) and 0 < f <= self.lr), "optim.lr_final", f"must be a positive number no larger than optim.lr, or none; got {f}")


@dataclass(frozen=True)
class ScheduleConfig:
    """How long to train and how often to look."""

    steps: int = 100_000
    """Training steps (the original's 100000)."""
    eval_every: int = 2000
    """Evaluate (batch of eval_batch_size and the dense pixel grid) every this many steps, and at the last step."""
    eval_batch_size: int = 4096
    """Random coordinates in each evaluation batch (the original's scatter view)."""
    log_every: int = 100
    """Read the training loss back from the device every this many steps (progress bar, divergence check)."""

    def __post_init__(self) -> None:
        _require(self.steps >= 1, "schedule.steps", f"must be at least 1, got {self.steps}")
        _require(self.steps <= 10**10, "schedule.steps", f"{self.steps} is absurdly large (limit 10**10)")
        _require(self.eval_every >= 1, "schedule.eval_every", f"must be at least 1, got {self.eval_every}")
        _require(self.eval_batch_size >= 1, "schedule.eval_batch_size", f"must be at least 1, got {self.eval_batch_size}")
        _require(self.log_every >= 1, "schedule.log_every", f"must be at least 1, got {self.log_every}")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run. `RunConfig()` is the original recipe (`relu_1`) on the built-in OVERFIT."""

    preset: str = "relu_1"
    """Name of the preset this config started from (a label; the fields below are what count)."""
    seed: int = 0
    """Seeds initialisation, training batches and evaluation batches: same seed, same machine, same numbers."""
    loss: str = "auto"
    """'auto' (cross_entropy for binary, mse for gray and rgb), 'cross_entropy' on logits, 'double_softmax' (softmax, then cross-entropy on logits, as the original code did) or 'mse'."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, mps."""
    compile: bool = False
    """torch.compile the forward and backward pass: faster steps after a one-off compile of seconds; falls back to eager where no compiler works."""
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
        mode = self.data.mode
        if mode == "binary":
            _require(self.loss_name in BINARY_LOSSES, "loss", f"{self.loss!r} does not fit data.mode binary; use {' or '.join(BINARY_LOSSES)}")
        else:
            _require(self.loss_name in REGRESSION_LOSSES, "loss", f"{self.loss!r} does not fit data.mode {mode} (pixel values need a regression loss); use mse")
        if self.encoding.kind == "grid":
            _require(self.model.input_range is not None, "model.input_range",
                     "the grid encoding needs scaled inputs; set a number (1 maps the picture onto the whole grid)")

    @property
    def loss_name(self) -> str:
        """The loss actually used: `loss`, with 'auto' resolved by the mode."""
        if self.loss != "auto":
            return self.loss
        return "cross_entropy" if self.data.mode == "binary" else "mse"

    @property
    def out_channels(self) -> int:
        """Network outputs: 2 logits (binary) or one value per colour channel."""
        return 2 if self.data.mode == "binary" else CHANNELS[self.data.mode]

    # -- JSON ---------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return _to_jsonable(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RunConfig:
        return _from_dict(cls, data, prefix="")

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"config is not valid JSON: {e}") from None
        return cls.from_dict(data)

    def with_overrides(self, overrides: Mapping[str, Any]) -> RunConfig:
        """Return a copy with dotted keys replaced: `{"model.activation": "tanh", "seed": "3"}`.

        String values are parsed by the field's type (`"64,256,64"` for a tuple of
        ints, `"none"` for None, `"true"`/`"false"` for booleans); other values must
        already have the right type.
        """
        cfg = self
        for key, value in overrides.items():
            cfg = _replace_path(cfg, key.split("."), value, key)
        return cfg


# -- helpers: JSON conversion and typed parsing -------------------------------

_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [_to_jsonable(v) for v in obj]
    return obj


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _coerce(tp: Any, value: Any, name: str) -> Any:
    """Check a JSON value against a field type; return it converted (list -> tuple, int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return _coerce(arg, value, name)
            except ConfigError:
                pass
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")
        item = typing.get_args(tp)[0]
        return tuple(_coerce(item, v, f"{name}[{i}]") for i, v in enumerate(value))
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"{name}: expected {_type_name(tp)}, got {value!r}")


def _from_dict(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected an object, got {data!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown config key (known: {', '.join(sorted(names))})")
    hints = _hints(cls)
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(tp, value, prefix + name)
    return cls(**kwargs)


def _parse_string(tp: Any, text: str, name: str) -> Any:
    """Parse a command-line string into a value of field type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _parse_string(arg, text, name)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {text!r}")
    if origin is tuple:
        item = typing.get_args(tp)[0]
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
        return tuple(_parse_string(item, p, name) for p in parts)
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"{name}: expected {_type_name(tp)}, got {text!r}") from None
    if tp is str:
        return text
    raise ConfigError(f"{name}: cannot be set from the command line")


def _replace_path(obj: Any, path: list[str], value: Any, full: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ConfigError(f"{full}: unknown config key (known here: {', '.join(sorted(names))})")
    tp = _hints(type(obj))[head]
    if len(path) > 1:
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"{full}: {head} has no sub-fields")
        return dataclasses.replace(obj, **{head: _replace_path(getattr(obj, head), path[1:], value, full)})
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"{full}: is a section; set one of its fields, e.g. {full}.{dataclasses.fields(tp)[0].name}")
    parsed = _parse_string(tp, value, full) if isinstance(value, str) and tp is not str else _coerce(tp, value, full)
    return dataclasses.replace(obj, **{head: parsed})


# Dotted keys whose value is one of a fixed set of names: the CLI and the lab offer these.
CHOICES: dict[str, tuple[str, ...]] = {
    "loss": LOSS_NAMES,
    "data.mode": MODES,
    "model.activation": ACTIVATION_NAMES,
    "model.init": INIT_NAMES,
    "encoding.kind": ENCODING_NAMES,
}


# Fields that only matter for some values of another field: key -> (that field, its values).
# Forms hide them otherwise (a sigma is meaningless without Fourier features).
_GRID_FIELDS = ("levels", "features_per_level", "log2_hashmap_size", "base_resolution", "per_level_scale")
APPLIES_WHEN: dict[str, tuple[str, tuple[str, ...]]] = {
    "model.w0": ("model.activation", tuple(name for name, a in ACTIVATIONS.items() if a.uses_w0)),
    "encoding.features": ("encoding.kind", ("fourier",)),
    "encoding.sigma": ("encoding.kind", ("fourier",)),
    "encoding.frequencies": ("encoding.kind", ("positional",)),
    **{f"encoding.{name}": ("encoding.kind", ("grid",)) for name in _GRID_FIELDS},
}


@dataclass(frozen=True)
class FieldInfo:
    """One settable config field, for help texts and generated forms."""

    key: str
    """Dotted name, e.g. 'model.activation'."""
    type: str
    """'int', 'float', 'str', 'bool', 'list of int', with ' or null' where None is allowed."""
    default: Any
    """Default value in its JSON form."""
    doc: str
    """The docstring written under the field."""
    choices: tuple[str, ...] | None
    """Allowed names, for fields that take one of a fixed set."""
    applies_when: tuple[str, tuple[str, ...]] | None = None
    """(another field, its values) for a field that only matters then, e.g. model.w0 with the siren activation."""


@functools.cache  # parsing the source costs ~30 ms, and the CLI's help text asks at every start
def _field_docstrings(cls: type) -> dict[str, str]:
    """The string literal written under each field of a dataclass, read from its source."""
    import ast
    import inspect
    import textwrap

    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for stmt, after in zip(body, body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name):
            if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str):
                docs[stmt.target.id] = " ".join(after.value.value.split())
    return docs


def describe_fields() -> list[FieldInfo]:
    """Every settable field of `RunConfig`, in declaration order, with its doc and choices."""
    out: list[FieldInfo] = []

    def walk(cls: type, obj: Any, prefix: str) -> None:
        docs = _field_docstrings(cls)
        for f in dataclasses.fields(cls):
            tp = _hints(cls)[f.name]
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(tp):
                walk(tp, value, f"{prefix}{f.name}.")
            else:
                key = prefix + f.name
                out.append(FieldInfo(key, _type_name(tp), _to_jsonable(value), docs.get(f.name, ""), CHOICES.get(key), APPLIES_WHEN.get(key)))

    walk(RunConfig, RunConfig(), "")
    return out


def field_docs() -> dict[str, tuple[str, str]]:
    """Every settable dotted key with its type name and default as JSON text, for help texts."""
    return {f.key: (f.type, json.dumps(f.default)) for f in describe_fields()}
