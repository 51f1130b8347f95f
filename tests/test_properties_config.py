"""Property tests of `RunConfig.from_json`: any text is a RunConfig or one `ConfigError` line, never another exception.

Inputs are arbitrary JSON documents, and mutations of a valid config's JSON: a field or
section replaced by a value of the wrong type, a huge or non-finite number, deep
nesting or an unknown key; a key removed; the text cut short or a character spliced in.
Examples are derandomized, so every run checks the same inputs.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from overfit import configio
from overfit.config import RunConfig
from overfit.errors import ConfigError
from overfit.presets import PRESETS

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

# JSON text no Python value serialises to: numbers beyond Python's digit limit or a float's range, deep nesting.
RAW_TOKENS = [
    "1" + "0" * 5000, "-" + "9" * 4400, "1e400", "-1e400", "1e-400", "-0", "-0.0", "NaN", "Infinity", "-Infinity",
    "[" * 40 + "]" * 40, "[" * 3000 + "]" * 3000, '{"a":' * 20 + "1" + "}" * 20, "[" * 17 + "1" + "]" * 17,
]
# Values that probe each check of a field: limits of ints and floats, wrong types, empty and odd text.
EDGE_VALUES = [
    None, True, False, 0, 1, -1, 2, 2**31, 2**63, -(2**63), 10**30, 10**4000, 0.0, -0.0, 1e-320, 1e308,
    math.nan, math.inf, -math.inf, "", " ", "none", "\n", "x" * 5000, "\x00", "\u202e", [], {}, [[]], [1, 2], [10**20],
    [-1], [0], [65537], {"a": 1},
]

json_leaves = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**40), max_value=10**40)
               | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20) | st.sampled_from(EDGE_VALUES))
json_values = st.recursive(json_leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=16)

LEAF_KEYS = configio.leaf_keys(RunConfig)
SECTIONS = sorted({key.split(".")[0] for key in LEAF_KEYS if "." in key})
PATHS = LEAF_KEYS + SECTIONS


class Raw:
    """A piece of JSON text to splice in verbatim where json.dumps cannot write it."""

    def __init__(self, text: str) -> None:
        self.text = text


def dumps(value: Any) -> str:
    """JSON text of `value`, with every `Raw` placeholder replaced by its text."""
    raws: list[str] = []

    def walk(v: Any) -> Any:
        if isinstance(v, Raw):
            raws.append(v.text)
            return f"\x00raw{len(raws) - 1}\x00"
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    text = json.dumps(walk(value))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{i}\x00"), raw)
    return text


def set_path(data: dict, path: str, value: Any) -> None:
    *sections, last = path.split(".")
    for part in sections:
        child = data.get(part)
        if not isinstance(child, dict):
            child = data[part] = {}
        data = child
    data[last] = value


def drop_path(data: dict, path: str) -> None:
    *sections, last = path.split(".")
    for part in sections:
        data = data.get(part) if isinstance(data, dict) else None
    if isinstance(data, dict):
        data.pop(last, None)


@st.composite
def mutated_configs(draw: st.DrawFn) -> str:
    """The JSON of a preset with a few fields changed, removed or added, or its text damaged."""
    data = PRESETS[draw(st.sampled_from(sorted(PRESETS)))].config.to_dict()
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "raw", "unknown", "drop"]))
        path = draw(st.sampled_from(PATHS))
        if action == "set":
            set_path(data, path, draw(json_values))
        elif action == "raw":
            set_path(data, path, Raw(draw(st.sampled_from(RAW_TOKENS))))
        elif action == "unknown":
            prefix = draw(st.sampled_from(["", *[s + "." for s in SECTIONS], path + "."]))
            set_path(data, prefix + draw(st.text(min_size=1, max_size=12)), draw(json_values))
        else:
            drop_path(data, path)
    text = dumps(data)
    damage = draw(st.sampled_from(["none", "none", "cut", "splice"]))
    if damage == "cut":
        text = text[: draw(st.integers(0, len(text)))]
    elif damage == "splice":
        at = draw(st.integers(0, len(text)))
        text = text[:at] + draw(st.text(max_size=3) | st.sampled_from(["[", "{", '"', "\\", "\x00", ",", "}"])) + text[at:]
    return text


def check_from_json(text: str) -> None:
    """from_json gives a RunConfig that survives its own JSON, or a one-line ConfigError; nothing else."""
    try:
        cfg = RunConfig.from_json(text)
    except ConfigError as e:
        message = str(e)
        assert message and "\n" not in message and "\r" not in message, repr(message)
        return
    assert isinstance(cfg, RunConfig)
    assert RunConfig.from_json(cfg.to_json()) == cfg


@SETTINGS
@given(json_values)
@example({"\r": None})  # an unknown key that would break the message's line
@example({"model": {"a\nb": 1}})
def test_from_json_of_any_json_document_is_a_config_or_a_config_error(value):
    check_from_json(dumps(value))


@SETTINGS
@given(st.dictionaries(st.sampled_from(["preset", "seed", "data", "model", "optim", "schedule", "encoding", "loss", "extra"]),
                       json_values, max_size=5))
def test_from_json_of_objects_with_config_like_keys_is_a_config_or_a_config_error(value):
    check_from_json(dumps(value))


@settings(SETTINGS, max_examples=300)
@given(mutated_configs())
def test_from_json_of_a_mutated_valid_config_is_a_config_or_a_config_error(text):
    check_from_json(text)


@SETTINGS
@given(st.text(max_size=200))
def test_from_json_of_any_text_is_a_config_or_a_config_error(text):
    check_from_json(text)


def test_mutations_reach_both_outcomes():
    """The mutation strategy makes valid configs as well as refused ones (else the property above proves little)."""
    outcomes = set()

    @settings(SETTINGS, max_examples=100)
    @given(mutated_configs())
    def collect(text):
        try:
            RunConfig.from_json(text)
            outcomes.add("config")
        except ConfigError:
            outcomes.add("error")

    collect()
    assert outcomes == {"config", "error"}
