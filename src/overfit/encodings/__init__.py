"""The encoding registry: what the MLP sees instead of the bare scaled coordinates.

Each encoding is an `nn.Module` in its own file here, mapping scaled coordinates
(N, 2) (the model's input scaling, in [-r, r] with r = `model.input_range`) to
features (N, out_features), with a `build(cfg, input_range, height, width)` beside it.
The registry below names each one with the config fields it reads; the config, the
CLI, the lab's form and the exports take their names and fields from it. To add an
encoding: a file here (module, `build`, `glsl`) and an entry below.

- `none`: the coordinates themselves (the original experiment).
- `fourier`: random Fourier features (Tancik et al. 2020).
- `positional`: NeRF's axis-aligned frequencies (Mildenhall et al. 2020).
- `grid`: a multiresolution hash grid (Muller et al. 2022, instant-NGP).

Importing this registry costs no torch import; `build` imports the implementation.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from torch import nn

    from ..config import EncodingConfig


@dataclass(frozen=True)
class Encoding:
    """A registry entry: the implementing module (a file in this package), a description and the fields it reads."""

    module: str
    description: str
    summary: Callable[[EncodingConfig], str]
    """One line about a configured encoding, for captions ("" for none)."""
    fields: tuple[str, ...] = ()
    needs_scaled_inputs: bool = False

    def build(self, cfg: EncodingConfig, input_range: float | None, height: int, width: int) -> nn.Module:
        """The encoding module for a picture of height x width pixels; it has `out_features`."""
        return importlib.import_module(f"{__name__}.{self.module}").build(cfg, input_range, height, width)


_GRID_FIELDS = ("levels", "features_per_level", "log2_hashmap_size", "base_resolution", "per_level_scale")

ENCODINGS: dict[str, Encoding] = {
    "none": Encoding("identity", "the scaled (y, x) coordinates themselves", lambda e: ""),
    "fourier": Encoding("fourier", "random Fourier features sin/cos(2 pi B v), B ~ N(0, sigma^2)",
                        lambda e: f"Fourier features {e.features} (sigma {e.sigma:g})", ("encoding.features", "encoding.sigma")),
    "positional": Encoding("positional", "NeRF positional encoding, frequencies 2^k pi for k < L",
                           lambda e: f"positional encoding L={e.frequencies}", ("encoding.frequencies",)),
    "grid": Encoding("grid", "multiresolution hash grid (instant-NGP), bilinear, trainable", lambda e: f"grid {e.levels} levels",
                     tuple(f"encoding.{name}" for name in _GRID_FIELDS), needs_scaled_inputs=True),
}
