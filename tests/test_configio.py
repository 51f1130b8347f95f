"""Tests for overfit.configio: hostile JSON is always a ConfigError, typed conversion, dotted overrides, type names."""

from __future__ import annotations

import json
from typing import Optional

import pytest

from overfit import configio
from overfit.config import ModelConfig, OptimConfig, RunConfig
from overfit.configio import (
    MAX_JSON_CHARS,
    MAX_JSON_DEPTH,
    coerce,
    from_dict,
    loads,
    parse_string,
    replace_path,
    short_repr,
    to_jsonable,
    type_name,
)
from overfit.errors import ConfigError

# -- loads: anything malformed is a ConfigError ------------------------------------------

HOSTILE = {
    "100,000 nested lists": "[" * 100_000 + "]" * 100_000,
    "100,000 nested lists, unclosed": "[" * 100_000,
    "100,000 nested objects": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "5,000-digit integer": "1" * 5000,
    "5,000-digit integer in a config": '{"seed": ' + "9" * 5000 + "}",
    "5,000-digit negative integer": '{"optim": {"lr": -' + "9" * 5000 + "}}",
    "huge text": " " * (MAX_JSON_CHARS + 1),
    "huge valid JSON": json.dumps({"preset": "x" * (MAX_JSON_CHARS + 10)}),
    "empty": "",
    "whitespace": "   \n ",
    "truncated": '{"seed": 1',
    "trailing garbage": '{"seed": 1}}',
    "single quotes": "{'seed': 1}",
    "bare word": "relu_1",
    "trailing comma": '{"seed": 1,}',
    "closing first": "]]]]",
    "control character in a string": '{"preset": "a\x01b"}',
    "bad escape": '{"preset": "\\q"}',
}


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_loads_refuses_hostile_text_with_a_config_error_only(text):
    with pytest.raises(ConfigError) as info:
        loads(text)
    assert type(info.value) is ConfigError
    message = str(info.value)
    assert "\n" not in message and len(message) < 300, message


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_run_config_from_json_refuses_hostile_text_with_a_config_error(text):
    with pytest.raises(ConfigError):
        RunConfig.from_json(text)


def test_loads_messages_say_what_is_wrong():
    with pytest.raises(ConfigError, match="100,000 levels of JSON nesting: more than the limit of 16"):
        loads("[" * 100_000)
    with pytest.raises(ConfigError, match="characters of config JSON: more than the limit of 1,048,576"):
        loads(" " * (MAX_JSON_CHARS + 1))
    with pytest.raises(ConfigError, match="not valid JSON.*digits"):
        loads("1" * 5000)
    with pytest.raises(ConfigError, match="not valid JSON"):
        loads("{")


def test_loads_accepts_nesting_up_to_the_limit_and_text_up_to_the_limit():
    deepest = "[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH
    assert loads(deepest) == json.loads(deepest)
    with pytest.raises(ConfigError):
        loads("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))
    at_limit = '"' + "x" * (MAX_JSON_CHARS - 2) + '"'
    assert len(at_limit) == MAX_JSON_CHARS and loads(at_limit) == "x" * (MAX_JSON_CHARS - 2)
    assert loads('{"a": [1, 2.5, null, true, "s"]}') == {"a": [1, 2.5, None, True, "s"]}


def test_brackets_inside_strings_are_not_nesting():
    # A config whose text is brackets must read back from its own config.json.
    cfg = RunConfig().with_overrides({"data.text": "[" * 40 + '"{\\', "preset": "{[" * 30})
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert loads(json.dumps(["[" * 100_000])) == ["[" * 100_000]
    # An escaped quote does not end the string; an escaped backslash before a quote does.
    assert loads('["\\"[[[", 1]') == ['"[[[', 1]
    with pytest.raises(ConfigError, match="^101 levels of JSON nesting"):
        loads('["\\\\", ' + "[" * 100 + "]" * 100 + "]")
    # Nesting after a string is still counted, and an unterminated string is invalid JSON.
    with pytest.raises(ConfigError, match="levels of JSON nesting"):
        loads('["a", ' + "[" * 100_000)
    with pytest.raises(ConfigError, match="not valid JSON"):
        loads('"' + "[" * 100_000)
    with pytest.raises(ConfigError, match="not valid JSON"):
        loads('"' + '\\"' * 400_000)


def test_a_real_config_round_trips_through_loads():
    cfg = RunConfig().with_overrides({"model.hidden": "8,16", "optim.lr_final": "1e-5", "data.image": "a.png"})
    assert RunConfig.from_json(cfg.to_json()) == cfg
    assert loads(cfg.to_json()) == cfg.to_dict()


# -- from_json / from_dict: types and keys ----------------------------------------------------


@pytest.mark.parametrize("text, field", [
    ("[]", "config"),
    ('"relu_1"', "config"),
    ('{"model": 5}', "model"),
    ('{"model": {"hiddne": [8]}}', "model.hiddne"),
    ('{"nonsense": 1}', "nonsense"),
    ('{"seed": "3"}', "seed"),
    ('{"seed": true}', "seed"),
    ('{"seed": 1.5}', "seed"),
    ('{"compile": 1}', "compile"),
    ('{"model": {"hidden": 8}}', "model.hidden"),
    ('{"model": {"hidden": [8, "x"]}}', "model.hidden[1]"),
    ('{"model": {"hidden": [[8]]}}', "model.hidden[0]"),
    ('{"model": {"input_range": "big"}}', "model.input_range"),
    ('{"optim": {"lr": 1e999}}', "optim.lr"),
    ('{"optim": {"lr": NaN}}', "optim.lr"),
    ('{"optim": {"beta1": NaN}}', "optim.beta1"),
    ('{"model": {"w0": Infinity}}', "model.w0"),
    ('{"data": {"mode": "cmyk"}}', "data.mode"),
    ('{"schedule": {"steps": 0}}', "schedule.steps"),
])
def test_from_json_names_the_field_at_fault(text, field):
    with pytest.raises(ConfigError) as info:
        RunConfig.from_json(text)
    assert info.value.field == field, str(info.value)
    assert str(info.value).startswith(f"{field}: ")


def test_from_dict_converts_lists_to_tuples_and_ints_to_floats():
    cfg = from_dict(RunConfig, {"model": {"hidden": [8, 16], "input_range": 2}, "optim": {"lr": 1}}, "")
    assert cfg.model.hidden == (8, 16)
    assert cfg.model.input_range == 2.0 and type(cfg.model.input_range) is float
    assert cfg.optim.lr == 1.0 and type(cfg.optim.lr) is float
    # Missing keys keep their defaults, and null is accepted where None is.
    assert cfg.seed == 0 and cfg.data == RunConfig().data
    assert from_dict(RunConfig, {"model": {"input_range": None}}, "").model.input_range is None


def test_from_dict_unknown_key_lists_the_known_ones():
    with pytest.raises(ConfigError) as info:
        from_dict(ModelConfig, {"hidden": [8], "widht": 3}, "model.")
    assert info.value.field == "model.widht"
    assert "known: activation, batchnorm, hidden, init, input_range, w0" in str(info.value)


def test_from_dict_of_a_section_uses_its_prefix():
    with pytest.raises(ConfigError) as info:
        from_dict(OptimConfig, [1, 2], "optim.")
    assert info.value.field == "optim"
    assert from_dict(OptimConfig, {"lr": 0.5}, "optim.") == OptimConfig(lr=0.5)


def test_from_dict_with_an_int_too_large_to_show():
    with pytest.raises(ConfigError) as info:
        RunConfig.from_dict({"optim": {"lr": 10**5000}})
    assert info.value.field == "optim.lr"
    assert "too large to show" in str(info.value) and len(str(info.value)) < 200


def test_to_jsonable_gives_plain_json_types():
    data = to_jsonable(RunConfig())
    assert data["model"]["hidden"] == [64, 256, 64]
    assert json.loads(json.dumps(data)) == data
    assert RunConfig.from_dict(data) == RunConfig()


# -- coerce -------------------------------------------------------------------------


def test_coerce_checks_each_type():
    assert coerce(int, 3, "k") == 3
    assert coerce(float, 3, "k") == 3.0 and type(coerce(float, 3, "k")) is float
    assert coerce(bool, False, "k") is False
    assert coerce(str, "a", "k") == "a"
    assert coerce(int | None, None, "k") is None
    assert coerce(tuple[int, ...], [1, 2], "k") == (1, 2)
    assert coerce(tuple[int, ...], (3,), "k") == (3,)
    for tp, value in [(int, True), (int, 1.0), (float, True), (float, "1"), (bool, 0), (str, 1), (type(None), 0),
                      (tuple[int, ...], "12"), (float, 10**400), (int | None, "x")]:
        with pytest.raises(ConfigError) as info:
            coerce(tp, value, "k")
        assert info.value.field == "k"
        assert str(info.value).startswith(f"k: expected {type_name(tp)}, got ")


def test_coerce_names_the_item_of_a_list():
    with pytest.raises(ConfigError) as info:
        coerce(tuple[int, ...], [1, 2, None], "model.hidden")
    assert info.value.field == "model.hidden[2]"


# -- parse_string --------------------------------------------------------------------


def test_parse_string_by_type():
    assert parse_string(int, "12", "k") == 12
    assert parse_string(int, " -3 ", "k") == -3
    assert parse_string(float, "1e-3", "k") == 1e-3
    assert parse_string(str, "none", "k") == "none"  # a plain str field keeps the word
    assert parse_string(tuple[int, ...], "64, 256,64", "k") == (64, 256, 64)
    assert parse_string(tuple[int, ...], "8,", "k") == (8,)
    assert parse_string(int | None, "none", "k") is None
    assert parse_string(float | None, "NULL", "k") is None
    assert parse_string(float | None, "0.5", "k") == 0.5
    assert parse_string(str | None, "none", "k") is None
    assert parse_string(str | None, "a.png", "k") == "a.png"
    for text in ("true", "Yes", "1", "ON"):
        assert parse_string(bool, text, "k") is True
    for text in ("false", "no", "0", "off"):
        assert parse_string(bool, text, "k") is False


@pytest.mark.parametrize("tp, text", [
    (int, "x"), (int, "1.5"), (int, "9" * 5000), (float, "fast"), (bool, "maybe"),
    (tuple[int, ...], "8,x"), (int | None, "nothing"),
])
def test_parse_string_refuses_with_the_field(tp, text):
    with pytest.raises(ConfigError) as info:
        parse_string(tp, text, "model.hidden")
    assert info.value.field == "model.hidden"
    assert "expected" in str(info.value) and len(str(info.value)) < 200


def test_parse_string_refuses_types_it_cannot_parse():
    with pytest.raises(ConfigError, match="cannot be set from a string"):
        parse_string(dict, "{}", "k")


# -- replace_path ------------------------------------------------------------------------


def test_replace_path_parses_strings_and_coerces_values():
    cfg = RunConfig()
    new = replace_path(cfg, ["model", "hidden"], "8,8", "model.hidden")
    assert new.model.hidden == (8, 8) and new.model.activation == cfg.model.activation
    assert replace_path(cfg, ["seed"], 7, "seed").seed == 7
    assert replace_path(cfg, ["optim", "lr"], 1, "optim.lr").optim.lr == 1.0
    assert replace_path(cfg, ["data", "image"], "none", "data.image").data.image is None
    assert replace_path(cfg, ["data", "text"], "none", "data.text").data.text == "none"
    assert cfg.model.hidden == (64, 256, 64)  # the original is untouched (frozen)


@pytest.mark.parametrize("path, value, field, words", [
    ("model.hiden", "8", "model.hiden", "unknown config key (known here: activation, batchnorm"),
    ("modle.hidden", "8", "modle.hidden", "unknown config key"),
    ("seed.x", "1", "seed.x", "seed has no sub-fields"),
    ("model", "8", "model", "is a section; set one of its fields, e.g. model.input_range"),
    ("seed", "three", "seed", "expected int"),
    ("seed", 1.5, "seed", "expected int"),
    ("model.hidden", "", "model.hidden", "needs at least one hidden layer"),
    ("optim.lr", "-1", "optim.lr", "must be a positive number"),
])
def test_replace_path_refusals_name_the_dotted_key(path, value, field, words):
    with pytest.raises(ConfigError) as info:
        RunConfig().with_overrides({path: value})
    assert info.value.field == field
    assert words in str(info.value)


# -- type names and short reprs -------------------------------------------------------------


def test_type_name():
    assert type_name(int) == "int"
    assert type_name(float) == "float"
    assert type_name(bool) == "bool"
    assert type_name(str) == "str"
    assert type_name(type(None)) == "null"
    assert type_name(int | None) == "int or null"
    assert type_name(Optional[float]) == "float or null"
    assert type_name(tuple[int, ...]) == "list of int"


def test_type_names_of_the_run_config_fields():
    hints = configio.hints(ModelConfig)
    assert type_name(hints["hidden"]) == "list of int"
    assert type_name(hints["input_range"]) == "float or null"
    assert type_name(hints["batchnorm"]) == "bool"
    assert type_name(configio.hints(RunConfig)["data"]) == "DataConfig"


def test_short_repr():
    assert short_repr("abc") == "'abc'"
    assert short_repr(12) == "12"
    long = short_repr("x" * 500)
    assert len(long) == 60 and long == repr("x" * 500)[:57] + "..."
    assert len(short_repr(list(range(100)), limit=20)) == 20
    assert short_repr(10**5000) == "<int too large to show>"
    assert short_repr([10**5000]) == "<list too large to show>"
    exact = "y" * 58  # repr is 60 characters: kept whole
    assert short_repr(exact) == repr(exact)
