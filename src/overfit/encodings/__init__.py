"""The encoding registry: what the MLP sees instead of the bare scaled coordinates.

Each encoding is an `nn.Module` in its own file here, mapping scaled coordinates
(N, 2) (the model's input scaling, in [-r, r] with r = `model.input_range`) to
features (N, out_features), with a `build(cfg, input_range, height, width)` and a
`glsl` form beside it. The registry below is each encoding's description, which
costs no torch import: the config fields it reads (their values and docs live in
`config.EncodingConfig`; `fields` shows a field only with the encodings that read
it), the checks on those fields (`check`, run by `EncodingConfig`), and its size from
its config alone (`size`: outputs, parameters, buffers, floats held per coordinate in
a training step, multiply-adds per coordinate; read by `budget`). The config, the CLI,
the lab's form, the memory budget and the exports take everything from here.

To add an encoding: a file here (module with `out_features`, `build`, `glsl`) and an
entry below (with its `check` and `size`); new fields, if it reads any, in
`config.EncodingConfig`. An entry without `size` is measured by building it on the meta
device (exact, but the first such build imports torch's compiler stack).

- `none`: the coordinates themselves (the original experiment).
- `fourier`: random Fourier features (Tancik et al. 2020).
- `positional`: NeRF's axis-aligned frequencies (Mildenhall et al. 2020).
- `grid`: a multiresolution hash grid (Muller et al. 2022, instant-NGP).

Importing this registry costs no torch import; `build` imports the implementation.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, NamedTuple

from ..errors import ConfigError
from ..limits import LIMITS

if TYPE_CHECKING:
    from torch import nn

    from ..config import EncodingConfig


class EncodingSize(NamedTuple):
    """An encoding's size on a picture, from its config alone (`budget` adds the MLP behind it)."""

    outputs: int
    """Features per coordinate (the first Linear's fan-in)."""
    params: int
    """Trainable numbers."""
    buffers: int
    """Fixed numbers saved with the weights."""
    floats: int
    """Floats held per coordinate in a training step (what the backward pass keeps)."""
    macs: int
    """Multiply-adds per coordinate."""


def _require(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(message, field=key)


def _no_check(cfg: EncodingConfig) -> None:
    pass


@dataclass(frozen=True)
class Encoding:
    """A registry entry: the implementing module (a file in this package), its description, fields, checks and size."""

    module: str
    description: str
    summary: Callable[[EncodingConfig], str]
    """One line about a configured encoding, for captions ("" for none)."""
    fields: tuple[str, ...] = ()
    """The `encoding.*` fields it reads (`fields.APPLIES_WHEN`, the stacked trainer's shape key)."""
    needs_scaled_inputs: bool = False
    check: Callable[[EncodingConfig], None] = _no_check
    """Refuses a bad value of one of its fields with a `ConfigError` naming it."""
    size: Callable[[EncodingConfig, int, int], EncodingSize] | None = None
    """(config, height, width) -> its size; None: measured by building it on the meta device."""
    size_fields: tuple[str, ...] = ()
    """The fields that make it large, most first (named by a memory refusal)."""

    def build(self, cfg: EncodingConfig, input_range: float | None, height: int, width: int) -> nn.Module:
        """The encoding module for a picture of height x width pixels; it has `out_features`."""
        return importlib.import_module(f"{__name__}.{self.module}").build(cfg, input_range, height, width)

    def size_of(self, cfg: EncodingConfig, input_range: float | None, height: int, width: int) -> EncodingSize:
        """Its size on a height x width picture: from `size`, or counted on the meta device (no memory) with a guess at the rest."""
        if self.size is not None:
            return self.size(cfg, height, width)
        import torch

        with torch.device("meta"):
            module = self.build(cfg, input_range, height, width)
        out = int(module.out_features)
        params = sum(p.numel() for p in module.parameters())
        buffers = sum(b.numel() for b in module.buffers())
        return EncodingSize(out, params, buffers, 4 * out, 4 * out)


# -- none ---------------------------------------------------------------------------------------

def _identity_size(cfg: EncodingConfig, height: int, width: int) -> EncodingSize:
    return EncodingSize(2, 0, 0, 2, 0)


# -- fourier ------------------------------------------------------------------------------------

def _fourier_check(cfg: EncodingConfig) -> None:
    _require(cfg.features >= 1, "encoding.features", f"must be at least 1, got {cfg.features}")
    LIMITS["fourier_features"].check(cfg.features)
    _require(math.isfinite(cfg.sigma) and cfg.sigma > 0, "encoding.sigma", f"must be a positive number, got {cfg.sigma}")


def _fourier_size(cfg: EncodingConfig, height: int, width: int) -> EncodingSize:
    m = cfg.features
    # angles (m), their sin and cos (2m), and the concatenated output (2m); B is a (2, m) buffer.
    return EncodingSize(2 * m, 0, 2 * m, 5 * m, 2 * m)


# -- positional ---------------------------------------------------------------------------------

def _positional_check(cfg: EncodingConfig) -> None:
    _require(1 <= cfg.frequencies <= 30, "encoding.frequencies", f"must be between 1 and 30, got {cfg.frequencies}")


def _positional_size(cfg: EncodingConfig, height: int, width: int) -> EncodingSize:
    octaves = 2 * cfg.frequencies  # per coordinate: both axes
    return EncodingSize(2 + 2 * octaves, 0, cfg.frequencies, 2 + 5 * octaves, octaves)


# -- grid ---------------------------------------------------------------------------------------

_GRID_FIELDS = ("levels", "features_per_level", "log2_hashmap_size", "base_resolution", "per_level_scale")


def _grid_check(cfg: EncodingConfig) -> None:
    _require(1 <= cfg.levels <= 32, "encoding.levels", f"must be between 1 and 32, got {cfg.levels}")
    _require(1 <= cfg.features_per_level <= 16, "encoding.features_per_level", f"must be between 1 and 16, got {cfg.features_per_level}")
    _require(8 <= cfg.log2_hashmap_size <= 26, "encoding.log2_hashmap_size", f"must be between 8 and 26, got {cfg.log2_hashmap_size}")
    _require(cfg.base_resolution >= 1, "encoding.base_resolution", f"must be at least 1, got {cfg.base_resolution}")
    s = cfg.per_level_scale
    _require(s is None or (math.isfinite(s) and s >= 1.0), "encoding.per_level_scale", f"must be a number >= 1 or none, got {s}")


def _grid_size(cfg: EncodingConfig, height: int, width: int) -> EncodingSize:
    from .grid import grid_resolutions

    table, F = 1 << cfg.log2_hashmap_size, cfg.features_per_level
    try:
        resolutions = grid_resolutions(cfg.levels, cfg.base_resolution, cfg.per_level_scale, height, width)
        vertices = [(cy + 1) * (cx + 1) for cy, cx in resolutions]
    except OverflowError:  # a scale so large that every level is hashed (and building it is refused)
        vertices = [table] * cfg.levels
    params = sum(min(v, table) for v in vertices) * F
    # Per level: four corners' indices (int64) and weights, their F features each, the level's output.
    per_level = 4 * 2 * 2 + 4 + 4 * F + F
    return EncodingSize(cfg.levels * F, params, 0, cfg.levels * per_level, cfg.levels * 4 * F)


ENCODINGS: dict[str, Encoding] = {
    "none": Encoding("identity", "the scaled (y, x) coordinates themselves", lambda e: "", size=_identity_size),
    "fourier": Encoding("fourier", "random Fourier features sin/cos(2 pi B v), B ~ N(0, sigma^2)",
                        lambda e: f"Fourier features {e.features} (sigma {e.sigma:g})", ("encoding.features", "encoding.sigma"),
                        check=_fourier_check, size=_fourier_size, size_fields=("encoding.features",)),
    "positional": Encoding("positional", "NeRF positional encoding, frequencies 2^k pi for k < L",
                           lambda e: f"positional encoding L={e.frequencies}", ("encoding.frequencies",),
                           check=_positional_check, size=_positional_size, size_fields=("encoding.frequencies",)),
    "grid": Encoding("grid", "multiresolution hash grid (instant-NGP), bilinear, trainable", lambda e: f"grid {e.levels} levels",
                     tuple(f"encoding.{name}" for name in _GRID_FIELDS), needs_scaled_inputs=True,
                     check=_grid_check, size=_grid_size, size_fields=("encoding.log2_hashmap_size", "encoding.levels")),
}
