"""The named configurations: the original experiment's six, each a `RunConfig`.

Each preset is `dataclasses.replace(BASE, ...)` plus a one-line description, so
`overfit train cos_3 --model.activation tanh` reads as "cos_3, but with tanh".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import ModelConfig, RunConfig
from .errors import OverfitError

# The original recipe: 2-64-256-64-2 MLP, Adam lr 1e-4, batch 1024, 100000 steps.
BASE = RunConfig()


@dataclass(frozen=True)
class Preset:
    config: RunConfig
    description: str


def _preset(name: str, description: str, **model: object) -> Preset:
    return Preset(replace(BASE, preset=name, model=replace(ModelConfig(), **model)), description)


PRESETS: dict[str, Preset] = {
    p.config.preset: p
    for p in (
        _preset("relu_raw", "ReLU on raw pixel coordinates: fails to converge, flipping between all-ink and all-background", input_range=None),
        _preset("relu_1", "ReLU with inputs scaled to [-1, 1]: the original recipe, converges (the default)", input_range=1.0),
        _preset("tanh_1", "tanh with inputs scaled to [-1, 1]: converges", activation="tanh", input_range=1.0),
        _preset("cos_1", "cos with inputs scaled to [-1, 1]: converges, slowly", activation="cos", input_range=1.0),
        _preset("cos_3", "cos with inputs scaled to [-3, 3]: converges faster than cos_1", activation="cos", input_range=3.0),
        _preset("bn_relu", "BatchNorm + ReLU on raw coordinates: no manual scaling needed, converges fastest", batchnorm=True, input_range=None),
    )
}

DEFAULT_PRESET = "relu_1"


class UnknownPresetError(OverfitError, KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def get_preset(name: str) -> RunConfig:
    """The config of preset `name`, or an error listing the known ones."""
    try:
        return PRESETS[name].config
    except KeyError:
        raise UnknownPresetError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
