"""JSON and strings <-> the config's dataclasses: typed conversion, dotted overrides, type names.

Generic over frozen dataclasses whose fields are int, float, bool, str, None,
tuples of those and nested dataclasses; `config.RunConfig` is the one user. JSON is
checked against each field's declared type (unknown keys, wrong types refused with
the key named); command-line strings are parsed by the same types
(`"64,256,64"` -> (64, 256, 64), `"none"` -> None, `"true"` -> True).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any, Mapping

from .errors import ConfigError
from .limits import LIMITS, most

# Deepest JSON nesting and longest JSON text of a config (`limits`); deeper or longer input is refused before parsing it.
MAX_JSON_DEPTH = most("config_depth")
MAX_JSON_CHARS = most("config_chars")


def get_path(obj: Any, key: str) -> Any:
    """The value of dotted `key` in a config dataclass: get_path(cfg, "model.hidden")."""
    for part in key.split("."):
        obj = getattr(obj, part)
    return obj


def leaf_keys(cls: type, prefix: str = "") -> list[str]:
    """Every settable dotted key of a config dataclass, in declaration order."""
    out: list[str] = []
    for f in dataclasses.fields(cls):
        tp = hints(cls)[f.name]
        out += leaf_keys(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else [prefix + f.name]
    return out


def short_repr(value: Any, limit: int = 60) -> str:
    """repr(value) cut to `limit` characters, safe for ints beyond Python's digit limit."""
    try:
        text = repr(value)
    except ValueError:
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def shown_key(key: str) -> str:
    """A key from the user as an error's field names it: as written if it is short printable text, else its repr, cut short.

    Keeps every message one line whatever the key holds (a newline, a control character, 5000 characters).
    """
    return key if key.isprintable() and len(key) <= 60 else short_repr(key)


def loads(text: str) -> Any:
    """Parse config JSON; anything malformed, absurdly deep or huge is a ConfigError, never another exception."""
    if not isinstance(text, str):
        raise ConfigError(f"config JSON must be text, got {type(text).__name__}")
    LIMITS["config_chars"].check(len(text))
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:  # brackets inside strings are text (data.text may be "[[[["), not nesting
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    LIMITS["config_depth"].check(deepest)
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as e:  # JSONDecodeError, and ints beyond Python's digit limit
        raise ConfigError(f"config is not valid JSON: {str(e).splitlines()[0]}") from None


_HINTS: dict[type, dict[str, Any]] = {}


def hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def to_jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, tuple):
        return [to_jsonable(v) for v in obj]
    return obj


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"list of {type_name(typing.get_args(tp)[0])}"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def coerce(tp: Any, value: Any, name: str) -> Any:
    """Check a JSON value against a field type; return it converted (list -> tuple, int -> float)."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            try:
                return coerce(arg, value, name)
            except ConfigError:
                pass
        raise ConfigError(f"expected {type_name(tp)}, got {short_repr(value)}", field=name)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"expected {type_name(tp)}, got {short_repr(value)}", field=name)
        item = typing.get_args(tp)[0]
        return tuple(coerce(item, v, f"{name}[{i}]") for i, v in enumerate(value))
    if tp is type(None):
        if value is None:
            return None
    elif tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    raise ConfigError(f"expected {type_name(tp)}, got {short_repr(value)}", field=name)


def from_dict(cls: type, data: Any, prefix: str) -> Any:
    where = prefix.rstrip(".") or "config"
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected an object, got {short_repr(data)}", field=where)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"unknown config key (known: {', '.join(sorted(names))})", field=prefix + shown_key(unknown[0]))
    field_types = hints(cls)
    kwargs = {}
    for name, value in data.items():
        tp = field_types[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = coerce(tp, value, prefix + name)
    return cls(**kwargs)


def parse_string(tp: Any, text: str, name: str) -> Any:
    """Parse a command-line string into a value of field type `tp`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if type(None) in args and text.strip().lower() in ("none", "null"):
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return parse_string(arg, text, name)
            except ConfigError as e:
                errors.append(e)
        raise ConfigError(f"expected {type_name(tp)}, got {short_repr(text)}", field=name)
    if origin is tuple:
        item = typing.get_args(tp)[0]
        parts = [p for p in text.replace(" ", "").split(",") if p != ""]
        return tuple(parse_string(item, p, name) for p in parts)
    try:
        if tp is bool:
            low = text.strip().lower()
            if low in ("true", "yes", "1", "on"):
                return True
            if low in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if tp is int:
            return int(text)
        if tp is float:
            return float(text)
    except ValueError:
        raise ConfigError(f"expected {type_name(tp)}, got {short_repr(text)}", field=name) from None
    if tp is str:
        return text
    raise ConfigError("cannot be set from a string", field=name)


def replace_path(obj: Any, path: list[str], value: Any, full: str) -> Any:
    names = {f.name for f in dataclasses.fields(obj)}
    head = path[0]
    if head not in names:
        raise ConfigError(f"unknown config key (known here: {', '.join(sorted(names))})", field=shown_key(full))
    tp = hints(type(obj))[head]
    if len(path) > 1:
        if not dataclasses.is_dataclass(tp):
            raise ConfigError(f"{head} has no sub-fields", field=shown_key(full))
        return dataclasses.replace(obj, **{head: replace_path(getattr(obj, head), path[1:], value, full)})
    if dataclasses.is_dataclass(tp):
        raise ConfigError(f"is a section; set one of its fields, e.g. {full}.{dataclasses.fields(tp)[0].name}", field=full)
    parsed = parse_string(tp, value, full) if isinstance(value, str) and tp is not str else coerce(tp, value, full)
    return dataclasses.replace(obj, **{head: parsed})


# Most seeds one range of a seed list may hold ("0-1023").
MAX_SEED_RANGE = most("seed_range")


def parse_seeds(text: str) -> list[int]:
    """Seeds from '0-7', '0,3,5', '2' or a mix ('0-3,8'): in order, without repeats; else a ConfigError for `seeds`.

    The one seed-list syntax: `overfit train --seeds`, `overfit sweep --seeds` and a sweep spec's "seeds".
    """
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not (low.isdigit() and (not dash or high.isdigit())):
            raise ConfigError(f"expected seeds like 0-7 or 0,3,5, got {short_repr(text)}", field="seeds")
        first, last = int(low), int(high) if dash else int(low)
        if last < first or last - first >= MAX_SEED_RANGE:
            raise ConfigError(f"{short_repr(part)} is not a range of at most {MAX_SEED_RANGE} seeds", field="seeds")
        seeds += [s for s in range(first, last + 1) if s not in seeds]
    return seeds


def _leaves(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in data.items():
        out += _leaves(value, f"{prefix}{key}.") if isinstance(value, dict) else [(prefix + key, value)]
    return out


def fields_html(data: dict[str, Any], defaults: dict[str, Any], title: str) -> str:
    """A config's fields (`to_dict`) as an HTML table by dotted name, those that differ from `defaults` in bold."""
    import html

    base = dict(_leaves(defaults))
    rows = []
    for key, value in _leaves(data):
        cell = html.escape(str(value))
        if base.get(key) != value:
            cell = f"<b>{cell}</b>"
        rows.append(f"<tr><td style='text-align:left'><code>{html.escape(key)}</code></td><td style='text-align:left'>{cell}</td></tr>")
    return f"<details open><summary>{html.escape(title)}</summary><table>{''.join(rows)}</table></details>"

