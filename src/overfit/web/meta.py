"""What the page knows about the server, served once by GET /api/meta, so the JavaScript copies nothing.

Config fields (docs, types, defaults, choices, when each applies) come from `fields`,
the default config and the presets from `config` and `presets`, and every fact that
differs by mode (the headline metric, the picture's channels, whether it goes through
the colour map) from the mode registry, and every metric's label, unit, digits and range
from the metric registry (`metricinfo`).
The page builds its forms, captions, legend and charts from this alone.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import configio, metricinfo
from ..config import RunConfig
from ..fields import CHOICES, describe_fields
from ..modes import MODES, Mode
from ..presets import DEFAULT_PRESET, PRESETS
from ..runs import NAME_PATTERN
from . import pictures
from .labrun import AT_THE_END, DOWNLOADS
from .live import MAX_CURVE_POINTS
from .network import diverging_table
from .uploads import FORMAT_NAMES, UPLOAD_ID, UploadStore

# The config section shown in the target card (all runs on the page fit one target); the others are each run's form.
TARGET_SECTION = "data"
# Section titles where the key is not the word for it ("" holds the top-level fields), and the sections shown open.
SECTION_TITLES = {"": "general", "optim": "optimizer"}
OPEN_SECTIONS = ("model", "optim", "schedule")


def headline_format(mode: Mode) -> dict[str, Any]:
    """How the page writes `mode`'s headline, as the metric registry does: value * scale to `digits` decimals, then the unit."""
    m = metricinfo.info(mode.headline)
    return {"scale": m.scale, "digits": m.digits, "unit": m.unit, "bounds": list(m.bounds) if m.bounds is not None else None}


def mode_facts(mode: Mode) -> dict[str, Any]:
    """Everything the page needs to know about one mode."""
    return {
        "description": mode.description,
        "headline": mode.headline,
        "fit_headline": mode.fit_headline,
        "test_headline": mode.test_headline,
        "label": mode.headline_label,
        "format": headline_format(mode),
        "picture_channels": mode.picture_channels,
        "colour_mapped": pictures.colour_mapped(mode),
        "prediction": mode.prediction_name,
    }


def sections() -> list[dict[str, Any]]:
    """The config's sections in form order (sub-configs as declared, then the top-level fields), with titles and docs."""
    out = []
    for name, tp in configio.hints(RunConfig).items():
        if dataclasses.is_dataclass(tp):
            out.append({"key": name, "title": SECTION_TITLES.get(name, name), "doc": (tp.__doc__ or "").strip(),
                        "open": name in OPEN_SECTIONS, "target": name == TARGET_SECTION})
    out.append({"key": "", "title": SECTION_TITLES[""], "doc": "", "open": "" in OPEN_SECTIONS, "target": False})
    return out


def meta(uploads: UploadStore, max_runs: int) -> dict[str, Any]:
    """The /api/meta payload."""
    return {
        "fields": [dataclasses.asdict(f) for f in describe_fields()],
        "choices": {k: list(v) for k, v in CHOICES.items()},
        "sections": sections(),
        "defaults": RunConfig().to_dict(),
        "modes": {name: mode_facts(mode) for name, mode in MODES.items()},
        # Every metric key a run can record, with its label and format: the page charts whichever a run has.
        "metrics": metricinfo.served(),
        "presets": {name: {"description": p.description, "config": p.config.to_dict()} for name, p in PRESETS.items()},
        "default_preset": DEFAULT_PRESET,
        "colour_map": {"name": pictures.COLOUR_MAP, "stops": pictures.colour_stops(), "ends": list(pictures.COLOUR_ENDS)},
        "diverging": diverging_table(),  # the network view's tiles: byte -> colour
        "downloads": [{"kind": kind, "label": label, "at_the_end": kind in AT_THE_END} for kind, (_, _, label) in DOWNLOADS.items()],
        "patterns": {"run": NAME_PATTERN.pattern, "upload": UPLOAD_ID.pattern},
        "limits": {"upload_bytes": uploads.max_bytes, "pixels": uploads.max_pixels, "max_runs": max_runs,
                   "upload_formats": list(FORMAT_NAMES), "curve_points": MAX_CURVE_POINTS},
    }
