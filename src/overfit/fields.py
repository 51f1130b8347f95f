"""What help texts and generated forms know about each config field, derived, never listed by hand.

Docs come from the fields' metadata (no source files needed: a zipped or compiled
install works), choices from the registries (activations, encodings, losses, modes),
and "applies when" from the fields each registry entry says it reads: a field that
only some activations or encodings use is shown only with those. A free-text field
with a few common values (data.holdout) lists them in SUGGESTIONS: offered, not enforced.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass
from typing import Any

from . import configio
from .activations import ACTIVATIONS
from .config import INIT_NAMES, LOSS_NAMES, PRECISIONS, RunConfig
from .encodings import ENCODINGS
from .modes import MODES

# Dotted keys whose value is one of a fixed set of names: the CLI and the lab offer these.
CHOICES: dict[str, tuple[str, ...]] = {
    "loss": LOSS_NAMES,
    "data.mode": tuple(MODES),
    "model.activation": tuple(ACTIVATIONS),
    "model.init": INIT_NAMES,
    "encoding.kind": tuple(ENCODINGS),
    "precision": PRECISIONS,
}
# Dotted keys that take free text with a few common values: the lab offers these and still takes any other.
SUGGESTIONS: dict[str, tuple[str, ...]] = {
    "data.holdout": ("none", "checkerboard", "0.1", "0.25", "0.5"),
}


def _applies_when() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Field -> (the choosing field, the names whose entry reads it), from the registries' `fields`."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for chooser, registry in (("model.activation", ACTIVATIONS), ("encoding.kind", ENCODINGS)):
        users: dict[str, list[str]] = {}
        for name, entry in registry.items():
            for key in entry.fields:
                users.setdefault(key, []).append(name)
        out.update({key: (chooser, tuple(names)) for key, names in users.items()})
    return out


APPLIES_WHEN = _applies_when()


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
    """The field's documentation."""
    choices: tuple[str, ...] | None
    """Allowed names, for fields that take one of a fixed set."""
    applies_when: tuple[str, tuple[str, ...]] | None = None
    """(another field, its values) for a field that only matters then, e.g. model.w0 with the siren activation."""
    suggestions: tuple[str, ...] | None = None
    """Common values of a free-text field (data.holdout: none, checkerboard, 0.25, ...); any other valid value is taken too."""


@functools.cache
def describe_fields() -> tuple[FieldInfo, ...]:
    """Every settable field of `RunConfig`, in declaration order, with its doc and choices."""
    out: list[FieldInfo] = []

    def walk(cls: type, obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(cls):
            tp = configio.hints(cls)[f.name]
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(tp):
                walk(tp, value, f"{prefix}{f.name}.")
            else:
                key = prefix + f.name
                out.append(FieldInfo(key, configio.type_name(tp), configio.to_jsonable(value), f.metadata.get("doc", ""),
                                     CHOICES.get(key), APPLIES_WHEN.get(key), SUGGESTIONS.get(key)))

    walk(RunConfig, RunConfig(), "")
    return tuple(out)


def field_docs() -> dict[str, tuple[str, str]]:
    """Every settable dotted key with its type name and default as JSON text, for help texts."""
    return {f.key: (f.type, json.dumps(f.default)) for f in describe_fields()}
