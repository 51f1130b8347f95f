"""The settings a reproduction judges the findings under: config fields and their values, every combination trained.

    axes = parse_variants(["loss=cross_entropy,double_softmax", "model.init=original,torch"])
    combinations(axes)   # 4 Variants: loss=cross_entropy,model.init=original ... loss=double_softmax,model.init=torch

A `--variant KEY=V1,V2,...` names a config field by its dotted name, as `overfit train`'s overrides
take it (`loss`, `model.init`, `optim.lr`, ...), and the values it takes; the values are parsed by
the field's type. The reproduction itself sets the picture, the mode, the seeds, the step budget,
the evaluations and the device, so those keys are refused, and so are unknown keys, values the
config refuses, a key or a value given twice and more than MAX_VARIANTS combinations. Each
combination is a `Variant`; a reproduction with one combination keeps the one-folder layout.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Sequence

from ..errors import ConfigError
from ..fields import field_docs

# Combinations one reproduction trains at most: each is six presets x the seeds.
MAX_VARIANTS = 16
# Keys the reproduction sets itself, and the option that sets them instead.
OWNED = {
    "preset": "the six presets are the reproduction's",
    "seed": "use --seeds",
    "device": "use --device",
    "compile": "use --compile/--no-compile",
    "data.mode": "the findings are judged on the binary mode",
    "schedule.steps": "use --steps",
    "schedule.eval_every": "use --eval-every",
    "schedule.eval_every_late": "the reproduction sets its evaluations",
    "schedule.eval_late_from": "the reproduction sets its evaluations",
}
OWNED_PREFIXES = {"data.": "the picture is set by --text, --image and --size; every variant fits the same one"}
# A value is also part of a folder name: plain words and numbers only.
VALUE_PATTERN = re.compile(r"[A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Variant:
    """One combination of settings, in the order the keys were given; empty: the presets as they are."""

    settings: tuple[tuple[str, str], ...] = ()

    @property
    def name(self) -> str:
        """'loss=double_softmax,model.init=torch' (also its folder's name); '' without settings."""
        return ",".join(f"{key}={value}" for key, value in self.settings)

    @property
    def overrides(self) -> dict[str, str]:
        """The settings as dotted config overrides."""
        return dict(self.settings)


def _owned(key: str) -> str | None:
    """Why the reproduction keeps `key` to itself, or None."""
    if key in OWNED:
        return OWNED[key]
    return next((why for prefix, why in OWNED_PREFIXES.items() if key.startswith(prefix) and key != "data.holdout"), None)


def parse_variants(texts: Sequence[str], losses: Sequence[str]) -> list[tuple[str, list[str]]]:
    """Each 'KEY=V1,V2,...' as (key, values), in order; anything wrong is a ConfigError for --variant naming it.

    `losses`: the losses the reproduction's mode takes (the config alone would also take 'auto').
    """
    from ..presets import get_preset

    known = field_docs()
    base = get_preset("relu_1").with_overrides({"data.mode": "binary"})
    axes: list[tuple[str, list[str]]] = []
    for text in texts:
        key, eq, rest = text.partition("=")
        key = key.strip()
        values = [v.strip() for v in rest.split(",")]
        if not eq or not key or not all(values):
            raise ConfigError(f"{text!r} is not KEY=V1,V2,... (e.g. loss=cross_entropy,double_softmax)", field="variant")
        if key not in known:
            raise ConfigError(f"unknown config key {key!r} (the keys: overfit train --help)", field="variant")
        why = _owned(key)
        if why is not None:
            raise ConfigError(f"{key} cannot vary: {why}", field="variant")
        if any(key == k for k, _ in axes):
            raise ConfigError(f"{key} is given twice (--loss and --init are --variant loss=... and model.init=...)", field="variant")
        for value in values:
            if values.count(value) > 1:
                raise ConfigError(f"{key}: the value {value!r} is given twice", field="variant")
            if not VALUE_PATTERN.fullmatch(value):
                raise ConfigError(f"{key}={value}: a value is letters, digits and . _ + - only", field="variant")
            if key == "loss" and value not in losses:
                raise ConfigError(f"loss={value}: the findings are judged with {' or '.join(losses)}", field="variant")
            try:
                base.with_overrides({key: value})
            except ConfigError as e:
                raise ConfigError(f"{key}={value}: {e.detail}", field="variant") from None
        axes.append((key, values))
    count = 1
    for _, values in axes:
        count *= len(values)
    if count > MAX_VARIANTS:
        sizes = " x ".join(str(len(values)) for _, values in axes)
        raise ConfigError(f"{sizes} = {count} combinations is more than the {MAX_VARIANTS} a reproduction trains", field="variant")
    return axes


def combinations(axes: Sequence[tuple[str, Sequence[str]]]) -> list[Variant]:
    """Every combination of the axes' values (the first key varies slowest); one empty Variant without axes."""
    keys = [key for key, _ in axes]
    return [Variant(tuple(zip(keys, values))) for values in itertools.product(*(values for _, values in axes))]
