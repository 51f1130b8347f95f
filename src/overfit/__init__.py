"""overfit: fit pictures with coordinate neural networks.

    from overfit import RunConfig, presets, train
    result = train(presets.get_preset("cos_3"), on_event=print)

`import overfit` is cheap: the names below that need torch are imported on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from . import presets
from .config import RunConfig
from .errors import ConfigError, OverfitError, TrainingDiverged

_LAZY = {
    "Event": "training", "Trainer": "training", "TrainResult": "training", "train": "training",
    "Session": "session", "RunFolder": "runs",
}

__all__ = ["ConfigError", "Event", "OverfitError", "RunConfig", "RunFolder", "Session", "TrainResult", "Trainer",
           "TrainingDiverged", "presets", "train", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'overfit' has no attribute {name!r}")
