"""How much memory and work a run takes, from its config alone, and the budget it must fit in.

    est = estimate(cfg, (300, 1000))     # bytes per part, parameters, FLOPs per step
    check(cfg, max_memory, (300, 1000))  # MemoryBudgetError if est.total > the budget

Every config field is validated on its own; this module bounds what they add up to.
`estimate` counts, in bytes, what a run holds while it trains: weights, gradients and
Adam state; the checkpoint being written; the activations of a training step; a chunk
of the dense evaluation and the full-picture buffers beside it; the evaluation batch;
the target picture; the frames, progress videos and final picture; and what any run
takes. `check` refuses a run over its budget with a one-line `MemoryBudgetError` that
names the largest part and the fields that drive it. The default budget is half the
memory this machine has available now (`default_budget`; how much that is comes from
memory.py). `Session.start` checks every new run before anything is allocated or
written, so the command line, `overfit reproduce`, sweeps and the lab are all covered;
a failed allocation that happens all the same becomes an `AllocationError`
(`memory.raising_allocation_errors`).

The numbers are estimates, meant to be right within a factor of about two: float32
everywhere (a bf16 run needs less for its activations), allocator slack and torch's
own workspaces not counted. They are for refusing a run that cannot fit, not for
planning one to the byte.

Importing this module costs no torch import; `estimate` imports what it measures with.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, replace
from typing import Callable, Sequence

from . import memory
from .config import RunConfig
from .encodings import ENCODINGS
from .errors import ConfigError, MemoryBudgetError
from .modes import MODES

__all__ = ["Estimate", "Part", "Pool", "check", "check_together", "default_budget", "estimate", "format_bytes", "format_flops", "parse_size"]

FLOAT = 4  # bytes of a float32
# The default budget: this share of the memory available when a run starts.
MEMORY_SHARE = 0.5
MEMORY_SHARE_WORDS = "half the available memory"

# Weights, gradients and Adam's two moments: four float32 numbers per parameter.
TRAINING_COPIES = 4
# A checkpoint is serialised into memory (torch.save into a buffer) before it is written:
# one more copy of the weights and of Adam's two moments.
CHECKPOINT_COPIES = 3
# The plotted sample of one training batch (samples.png): float64 copies, colours and
# matplotlib's own point arrays, per point.
SAMPLE_PLOT_BYTES = 64
# final.png: matplotlib turns the target and the prediction into float64 RGBA copies and
# resamples them; about this many bytes per pixel of the picture (measured: 160 gray, 210 rgb).
FINAL_PLOT_BYTES = 200
# What a run takes whatever its size (torch's and matplotlib's working memory, the video
# writer); measured at about 120 MB beyond the imports for a tiny run.
RUNTIME_BYTES = 128 * 10**6
# Full-size frames held at once while recording and writing the progress videos: the
# prediction, its uint8 frame, a frame read back and its captioned copy.
FULL_FRAMES = 4
# The GIF preview is held whole while it is written, thinned to at most this many frames of
# at most this long a side (video.GIF_MAX_FRAMES, video.GIF_MAX_SIDE); the MP4 streams.
GIF_FRAMES, GIF_SIDE = 100, 640
# Held-out pixels (data.holdout): the training and test masks (a bool each per pixel); a random
# fraction also keeps its training pixels' int64 indices, and draws them from an int64
# permutation of every pixel; what scoring each split takes is the mode's (modes.PixelMemory.held_out).
HOLDOUT_MASK_BYTES = 2
HOLDOUT_INDEX_BYTES = 8

# -- parts and the estimate ------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """One thing a run holds in memory: its size, what it is, and the fields that drive it."""

    name: str
    """'model', 'checkpoint', 'training batch', 'dense evaluation', 'evaluation batch', 'target', 'frames', 'runtime' or 'held-out pixels'."""
    bytes: int
    what: str
    """How the part is described in a refusal: '17.2 GB of weights x4 with gradients and Adam state'."""
    fields: tuple[str, ...]
    """The config keys that make it large, most telling first."""
    advice: str = "lower {fields}"
    """How to make it smaller, with `{fields}` standing for the fields (as the caller names them)."""
    held: bool = True
    """Held for the whole run (runs trained together add it up), or only for a moment (one run at a time)."""


@dataclass(frozen=True)
class Estimate:
    """What `estimate` found: the parts in bytes and the work of a step."""

    parts: tuple[Part, ...]
    parameters: int
    """Trainable numbers of the model (the encoding's tables included)."""
    flops_per_step: float
    """Floating-point operations of one training step (forward and backward, 2 per multiply-add)."""
    flops_per_evaluation: float
    """Of one evaluation: the evaluation batch and every pixel."""
    evaluations: int
    runs: int = 1

    @property
    def total(self) -> int:
        return sum(p.bytes for p in self.parts)

    def part(self, name: str) -> Part:
        return next(p for p in self.parts if p.name == name)

    @property
    def largest(self) -> Part:
        """The largest part that some field drives (what a refusal names)."""
        return max((p for p in self.parts if p.fields), key=lambda p: p.bytes)

    def summary(self) -> str:
        """'~68.7 GB and ~1.2 TFLOP per step': the headline numbers."""
        return f"~{format_bytes(self.total)} and ~{format_flops(self.flops_per_step)} per step"

    def breakdown(self) -> str:
        """Every part on one line: 'model 535 kB, checkpoint 401 kB, training batch 5.4 MB, ...'."""
        return ", ".join(f"{p.name} {format_bytes(p.bytes)}" for p in self.parts)

    @staticmethod
    def together(estimates: Sequence[Estimate]) -> Estimate:
        """Runs trained at the same time: what each holds adds up, what is made one run at a time does not."""
        if len(estimates) == 1:
            return estimates[0]
        names = list(dict.fromkeys(p.name for e in estimates for p in e.parts))  # some parts only some runs have
        parts = []
        for name in names:
            each = [p for e in estimates for p in e.parts if p.name == name]
            biggest = max(each, key=lambda p: p.bytes)
            if biggest.held:
                parts.append(replace(biggest, bytes=sum(p.bytes for p in each), what=f"{biggest.what}, for each of {len(each)} runs"))
            else:
                parts.append(biggest)
        return Estimate(tuple(parts), sum(e.parameters for e in estimates), sum(e.flops_per_step for e in estimates),
                        max(e.flops_per_evaluation for e in estimates), max(e.evaluations for e in estimates),
                        sum(e.runs for e in estimates))


def _picture(cfg: RunConfig, target_shape: tuple[int, int] | None) -> tuple[int, int, tuple[str, ...], str]:
    """(height, width) of the picture, the fields that set its size and how to make it smaller."""
    data = cfg.data
    if data.image is None:
        height, width = target_shape or (data.height, data.width)
        return height, width, ("data.width", "data.height"), "lower {fields}"
    if target_shape is None:
        # Not read yet: the largest picture the config accepts, as a square.
        side = math.isqrt(data.max_pixels)
        height, width = side, side
    else:
        height, width = target_shape
    return height, width, ("data.image",), "use a smaller picture than {fields}"


def estimate(cfg: RunConfig, target_shape: tuple[int, int] | None = None, training: bool = True) -> Estimate:
    """The memory and work of a run of `cfg` on a picture of `target_shape` (height, width).

    `target_shape` None: the text canvas (data.height x data.width), or for a picture not
    read yet the largest one data.max_pixels allows. `training` False: what loading the
    fitted model to render it holds (its weights, twice while they are loaded, and one
    chunk of pixels), for exports and run folders. Nothing is allocated.
    """
    from .metrics import DENSE_CHUNK

    height, width, picture_fields, picture_advice = _picture(cfg, target_shape)
    pixels = height * width
    mode = MODES[cfg.data.mode]
    model, sched, batch = cfg.model, cfg.schedule, cfg.optim.batch_size
    out = cfg.out_channels

    # -- the network's shape: encoding, then Linear (+ BatchNorm) per hidden width, then the output layer --
    encoding = ENCODINGS[cfg.encoding.kind]  # each encoding sizes itself from its config (`encodings.Encoding.size`)
    enc_out, enc_params, enc_buffers, enc_floats, enc_macs = encoding.size_of(cfg.encoding, model.input_range, height, width)
    encoding_fields = encoding.size_fields
    widths = [enc_out, *model.hidden, out]
    layer_macs = [a * b for a, b in zip(widths, widths[1:])]
    mlp_params = sum(m + b for m, b in zip(layer_macs, widths[1:]))  # weights and biases
    norm_params = 2 * sum(model.hidden) if model.batchnorm else 0  # BatchNorm's scale and shift
    params = enc_params + mlp_params + norm_params
    # The input scaling (4), BatchNorm's running mean and variance and its step counter.
    buffers = enc_buffers + 4 + (norm_params + len(model.hidden) if model.batchnorm else 0)
    macs = enc_macs + sum(layer_macs)

    # Which fields make the model large: the encoding's tables, or the widths (and a wide encoding before them).
    if enc_params >= mlp_params and encoding_fields:
        model_fields = (*encoding_fields, "model.hidden")
    elif enc_out > max(model.hidden) and encoding_fields:
        model_fields = ("model.hidden", *encoding_fields)
    else:
        model_fields = ("model.hidden",)

    # Inference holds two consecutive layers' outputs at a time (plus the encoding's work).
    pair = max(a + b for a, b in zip(widths[1:], widths[2:])) if len(widths) > 2 else widths[-1]
    infer_floats = 2 + enc_floats + max(pair, enc_out + widths[1])
    weights = (params + buffers) * FLOAT

    if not training:
        parts = (
            Part("model", 2 * weights, f"{format_bytes(weights)} of weights x2 while they are loaded", model_fields),
            Part("render chunk", min(DENSE_CHUNK, pixels) * infer_floats * FLOAT, f"chunks of {DENSE_CHUNK:,} pixels", ("model.hidden",)),
        )
        return Estimate(parts, params, 0.0, 2.0 * macs * pixels, 0)

    # -- training: weights, gradients and Adam, and the checkpoint written at each evaluation --
    held = params * FLOAT * TRAINING_COPIES + buffers * FLOAT
    checkpoint = (params * CHECKPOINT_COPIES + buffers) * FLOAT
    # A training step keeps, per coordinate, the batch (2 + targets), the encoding's work, each
    # hidden layer's Linear and activation outputs (with BatchNorm also its output and the
    # normalised input) and the logits with the loss's softmax, for the backward pass, which
    # then holds the gradients of two layers at a time.
    hidden_floats = sum(model.hidden) * (4 if model.batchnorm else 2)
    train_floats = 2 + out + enc_floats + hidden_floats + 3 * out + 2 * max(widths)
    activations = batch * train_floats * FLOAT + batch * SAMPLE_PLOT_BYTES

    # -- an evaluation: the batch, then every pixel in chunks into full-picture buffers --
    eval_batch = sched.eval_batch_size * (infer_floats + 2 + out) * FLOAT
    picture_buffers = pixels * mode.memory.dense  # the mode's full-picture buffers (modes.PixelMemory)
    chunk = min(DENSE_CHUNK, pixels) * (infer_floats + 2 + out) * FLOAT
    dense = chunk + picture_buffers
    dense_fields, dense_advice = (picture_fields, picture_advice) if picture_buffers >= chunk else (("model.hidden",), "lower {fields}")

    # -- the target: the mode's arrays on the host and its tensor on the device, and the decoded picture
    # while it is converted --
    target = pixels * (mode.memory.target + 4)

    # -- frames: a few full-size ones at once, the GIF preview held whole, and final.png --
    evaluations = sched.evaluation_count()
    frames = FULL_FRAMES * pixels * 3 + _gif_bytes(height, width, evaluations) + FINAL_PLOT_BYTES * pixels

    # -- held-out pixels: the split's masks (and a random split's training indices), and each split's scores --
    fraction = cfg.data.holdout_fraction(cfg.data.holdout)
    holdout = 0
    if cfg.data.holdout != "none":
        holdout = pixels * HOLDOUT_MASK_BYTES
        if fraction is not None:
            holdout += pixels * HOLDOUT_INDEX_BYTES * (1 + (1 - fraction))  # the permutation, then the kept indices
        holdout += pixels * mode.memory.held_out

    flops_step = 6.0 * batch * macs  # forward 2, backward 4 per multiply-add
    flops_eval = 2.0 * (pixels + sched.eval_batch_size) * macs

    parts = (
        Part("model", held, f"{format_bytes(params * FLOAT)} of weights x{TRAINING_COPIES} with gradients and Adam state", model_fields),
        Part("checkpoint", checkpoint, f"{format_bytes(checkpoint)} to serialise a checkpoint of the weights and Adam state",
             model_fields, held=False),
        Part("training batch", activations, f"{format_bytes(activations)} of activations for batches of {batch:,} coordinates",
             ("optim.batch_size", "model.hidden")),
        Part("dense evaluation", dense, f"{format_bytes(dense)} to evaluate all {pixels:,} pixels of a {width} x {height} picture",
             dense_fields, dense_advice, held=False),
        Part("evaluation batch", eval_batch, f"{format_bytes(eval_batch)} for evaluation batches of {sched.eval_batch_size:,}",
             ("schedule.eval_batch_size",), held=False),
        Part("target", target, f"{format_bytes(target)} to hold the {width} x {height} picture", picture_fields, picture_advice),
        Part("frames", frames, f"{format_bytes(frames)} for the frames, progress videos and final.png of a {width} x {height} picture",
             picture_fields, picture_advice, held=False),
        Part("runtime", RUNTIME_BYTES, f"{format_bytes(RUNTIME_BYTES)} that any run takes", (), held=False),
    )
    if holdout:
        parts += (Part("held-out pixels", holdout, f"{format_bytes(holdout)} to split the {width} x {height} picture's pixels "
                       f"into training and held-out ones", (*picture_fields, "data.holdout"), picture_advice),)
    return Estimate(parts, params, flops_step, flops_eval, evaluations)


def _gif_bytes(height: int, width: int, evaluations: int) -> int:
    """The GIF preview, held whole while it is written: its thinned, shrunk frames, RGB and paletted."""
    band = -(-max(24, round(width * 0.045)) // 8) * 8  # the caption band `captions.annotate` adds (captions.band_height)
    scale = min(1.0, GIF_SIDE / max(width, height + band))
    return min(evaluations, GIF_FRAMES) * math.ceil((height + band) * scale) * math.ceil(width * scale) * 4


# -- the budget ----------------------------------------------------------------------------


def default_budget() -> int:
    """The budget of a run when none is given: MEMORY_SHARE (half) of `memory.available_memory()`."""
    return int(memory.available_memory() * MEMORY_SHARE)


def check(cfg: RunConfig, budget: int | None = None, target_shape: tuple[int, int] | None = None,
          training: bool = True) -> Estimate:
    """The estimate of a run, refused with a `MemoryBudgetError` when it is over `budget`.

    `budget`: bytes, as the caller's `max_memory` parameter; None: `default_budget()`.
    `target_shape` and `training` as for `estimate`.
    """
    return _within(estimate(cfg, target_shape, training), budget, training)


def check_together(configs: Sequence[RunConfig], budget: int | None = None,
                   target_shapes: Sequence[tuple[int, int] | None] | None = None) -> Estimate:
    """`check` for runs trained at the same time in one process (`Estimate.together`)."""
    shapes = list(target_shapes) if target_shapes is not None else [None] * len(configs)
    return Pool(budget).check(configs, shapes)


class Pool:
    """One memory budget for everything that trains at the same time in this process.

    Every run that trains is checked against it together with the runs already holding
    a share (`Estimate.together`): `overfit train` with several runs, a reproduction, the
    lab's runs and a sweep trial all reserve here through `Session`, and a run's share is
    released when its session closes. `limit`: bytes (the caller's `max_memory`), or None
    for `default_budget()` as it is when the pool is made.
    """

    def __init__(self, limit: int | None = None, source_field: str | None = "max_memory") -> None:
        self.limit = default_budget() if limit is None else limit
        self.source_field = None if limit is None else source_field
        """The parameter a refusal names as the budget's source (None: the default budget, half the available memory)."""
        self._held: dict[int, Estimate] = {}
        self._count = 0
        self._lock = threading.Lock()

    def reserve(self, cfg: RunConfig, target_shape: tuple[int, int] | None = None) -> tuple[Estimate, Callable[[], None]]:
        """The run's estimate and a function that gives its share back; `MemoryBudgetError` when it does not fit beside the others."""
        est = estimate(cfg, target_shape)
        with self._lock:
            _within(Estimate.together([*self._held.values(), est]), self.limit, True, self.source_field)
            key = self._count = self._count + 1
            self._held[key] = est
        return est, lambda: self._release(key)

    def check(self, configs: Sequence[RunConfig], target_shapes: Sequence[tuple[int, int] | None]) -> Estimate:
        """Whether runs about to start would all fit beside the runs holding a share now (nothing is reserved)."""
        with self._lock:
            held = list(self._held.values())
        return _within(Estimate.together([*held, *(estimate(c, s) for c, s in zip(configs, target_shapes))]), self.limit, True,
                       self.source_field)

    def _release(self, key: int) -> None:
        with self._lock:
            self._held.pop(key, None)

    @property
    def held(self) -> int:
        """Bytes the runs training now hold, by their estimates."""
        with self._lock:
            return sum(e.total for e in self._held.values())


def _within(est: Estimate, budget: int | None, training: bool, source_field: str | None = "max_memory") -> Estimate:
    """`est` if it is within `budget` (None: `default_budget()`); the refusal names `source_field` for a budget given."""
    limit = default_budget() if budget is None else budget
    if est.total <= limit:
        return est
    if not training:
        summary = f"loading the model needs ~{format_bytes(est.total)}"
    elif est.runs > 1:
        summary = f"{est.runs} runs trained together need {est.summary()}"
    else:
        summary = f"run needs {est.summary()}"
    part = est.largest
    raise MemoryBudgetError(summary, part.what, part.fields, part.advice, est.total, limit, format_bytes(limit),
                            source_field=None if budget is None else source_field, source=MEMORY_SHARE_WORDS)


def parse_size(text: str | int, field: str = "max_memory") -> int:
    """Bytes from '32GB', '500 MB', '1.5GiB', '4g' or a plain number of bytes; a `ConfigError` naming `field` otherwise.

    kB, MB, GB, TB (and k, M, G, T) are powers of 1000; KiB, MiB, GiB, TiB powers of 1024.
    """
    if isinstance(text, int) and not isinstance(text, bool):
        number, unit = float(text), ""
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*", str(text))
        if not match:
            raise ConfigError(f"expected a size like 32GB, 500MB or a number of bytes, got {text!r}", field=field)
        number, unit = float(match.group(1)), match.group(2)
    units = {"": 1, "b": 1}
    for power, prefix in enumerate("kmgtp", start=1):
        units[prefix] = units[prefix + "b"] = 1000**power
        units[prefix + "ib"] = 1024**power
    if unit.lower() not in units:
        raise ConfigError(f"unknown unit {unit!r} in {text!r}; use B, kB, MB, GB, TB (or KiB, MiB, GiB, TiB)", field=field)
    unit = unit.lower()
    size = number * units[unit]
    if not (math.isfinite(size) and size >= 1):
        raise ConfigError(f"must be at least 1 byte, got {text!r}", field=field)
    return int(size)


# -- words ---------------------------------------------------------------------------------------


def _si(value: float, unit: str) -> str:
    for prefix in ("", "k", "M", "G", "T", "P", "E"):
        if abs(value) < 999.5 or prefix == "E":
            digits = 0 if abs(value) >= 99.95 or prefix == "" else 1
            return f"{value:.{digits}f} {prefix}{unit}"
        value /= 1000.0
    raise AssertionError("unreachable")


def format_bytes(n: float) -> str:
    """'68.7 GB', '512 MB', '900 B': decimal units, three significant digits at most."""
    return _si(float(n), "B")


def format_flops(n: float) -> str:
    """'1.2 TFLOP', '350 MFLOP'."""
    return _si(float(n), "FLOP")
