"""overfit: fit pictures with coordinate neural networks.

    from overfit import RunConfig, presets, train
    result = train(presets.get_preset("cos_3"), on_event=print)
"""

__version__ = "0.1.0"

from . import presets
from .config import ConfigError, RunConfig
from .errors import OverfitError
from .training import Event, Trainer, TrainResult, TrainingDiverged, train

__all__ = ["ConfigError", "Event", "OverfitError", "RunConfig", "TrainResult", "Trainer", "TrainingDiverged", "presets", "train", "__version__"]
