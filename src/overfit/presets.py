"""The named configurations: the original experiment's six and four modern ones, each a `RunConfig`.

Each preset is `dataclasses.replace(BASE, ...)` plus a one-line description, so
`overfit train cos_3 --model.activation tanh` reads as "cos_3, but with tanh".
The modern presets (fourier, siren, grid, fast) work for every data.mode:
`overfit train grid --mode rgb --image photo.jpg`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import EncodingConfig, ModelConfig, OptimConfig, RunConfig, ScheduleConfig
from .errors import UnknownPresetError

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
        _preset("relu_raw", "ReLU on raw pixel coordinates: fails to converge (here it collapses to all background; the article saw it flip)", input_range=None),
        _preset("relu_1", "ReLU with inputs scaled to [-1, 1]: the original recipe, converges (the default)", input_range=1.0),
        _preset("tanh_1", "tanh with inputs scaled to [-1, 1]: converges", activation="tanh", input_range=1.0),
        _preset("cos_1", "cos with inputs scaled to [-1, 1]: converges, slowly", activation="cos", input_range=1.0),
        _preset("cos_3", "cos with inputs scaled to [-3, 3]: converges faster than cos_1", activation="cos", input_range=3.0),
        _preset("bn_relu", "BatchNorm + ReLU on raw coordinates: no manual scaling needed, converges fastest", batchnorm=True, input_range=None),
    )
}
ORIGINAL_PRESETS = tuple(PRESETS)


def _modern(name: str, description: str, model: ModelConfig, encoding: EncodingConfig, optim: OptimConfig, schedule: ScheduleConfig) -> Preset:
    return Preset(replace(BASE, preset=name, model=model, encoding=encoding, optim=optim, schedule=schedule), description)


# instant-NGP's optimiser for grids: Adam with beta2 0.99 and a tiny epsilon, lr 1e-2.
_GRID_ADAM = dict(lr=1e-2, beta2=0.99, eps=1e-15)
# instant-NGP grows its levels by 1.5 to 2 per level. From 16 cells to one cell per pixel of a
# 512- to 1000-pixel picture that is 8 levels (scale 1.64 to 1.80); its 16 levels would give
# 1.26 to 1.32 and, measured on the 512 x 512 camera, twice the encoding work for no gain.
_GRID_LEVELS = 8

for _p in (
    _modern(
        "fourier", "random Fourier features (256, sigma 10) into a 256-256 ReLU MLP (Tancik et al. 2020)",
        # input_range 0.5 spans a unit interval, the scale sigma is defined on.
        ModelConfig(input_range=0.5, hidden=(256, 256)),
        EncodingConfig(kind="fourier", features=256, sigma=10.0),
        OptimConfig(lr=1e-3, lr_final=1e-4, batch_size=4096),
        ScheduleConfig(steps=2000, eval_every=200, log_every=50),
    ),
    _modern(
        "siren", "SIREN: sin(30 x) layers 256-256-256 with SIREN's initialisation (Sitzmann et al. 2020)",
        ModelConfig(input_range=1.0, hidden=(256, 256, 256), activation="siren", w0=30.0),
        EncodingConfig(),
        OptimConfig(lr=1e-4, batch_size=4096),
        ScheduleConfig(steps=2000, eval_every=200, log_every=50),
    ),
    _modern(
        "grid", "multiresolution hash grid (8 levels x 2 features) into a 64-64 ReLU MLP (instant-NGP)",
        ModelConfig(input_range=1.0, hidden=(64, 64)),
        EncodingConfig(kind="grid", levels=_GRID_LEVELS),
        OptimConfig(**_GRID_ADAM, lr_final=1e-4, batch_size=16384),
        ScheduleConfig(steps=1500, eval_every=150, log_every=50),
    ),
    _modern(
        "fast", "the quickest way to a near-perfect OVERFIT on a CPU: the grid, one hidden layer, 100 steps",
        ModelConfig(input_range=1.0, hidden=(64,)),
        EncodingConfig(kind="grid", levels=_GRID_LEVELS),
        OptimConfig(**_GRID_ADAM, batch_size=16384),
        ScheduleConfig(steps=100, eval_every=20, log_every=10),
    ),
):
    PRESETS[_p.config.preset] = _p
MODERN_PRESETS = tuple(name for name in PRESETS if name not in ORIGINAL_PRESETS)

DEFAULT_PRESET = "relu_1"


def get_preset(name: str) -> RunConfig:
    """The config of preset `name`, or an error listing the known ones."""
    try:
        return PRESETS[name].config
    except KeyError:
        raise UnknownPresetError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}") from None
