"""Tests for overfit.config: defaults, the JSON round trip, refusals that name the field, overrides."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from overfit import configio
from overfit.activations import ACTIVATIONS
from overfit.config import (
    LOSS_NAMES,
    ConfigError,
    DataConfig,
    EncodingConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ScheduleConfig,
)
from overfit.fields import CHOICES, describe_fields, field_docs
from overfit.errors import OverfitError
from overfit.encodings import ENCODINGS
from overfit.losses import LOSSES

# -- defaults: the original recipe -----------------------------------------------


def test_defaults_are_the_original_recipe():
    cfg = RunConfig()
    assert cfg.model.hidden == (64, 256, 64)
    assert cfg.model.activation == "relu"
    assert cfg.model.input_range == 1.0
    assert cfg.model.batchnorm is False
    assert cfg.model.init == "original"
    assert cfg.optim.lr == 1e-4
    assert cfg.optim.batch_size == 1024
    assert cfg.schedule.steps == 100_000
    assert cfg.schedule.eval_every == 2000
    assert cfg.schedule.eval_batch_size == 4096
    assert cfg.loss == "auto" and cfg.loss_name == "cross_entropy"
    assert cfg.seed == 0
    assert cfg.preset == "relu_1"
    # The original picture: OVERFIT on a 1000 x 300 canvas.
    assert (cfg.data.text, cfg.data.width, cfg.data.height, cfg.data.image) == ("OVERFIT", 1000, 300, None)


def test_sub_config_defaults_match_the_run_config():
    cfg = RunConfig()
    assert cfg.data == DataConfig()
    assert cfg.model == ModelConfig()
    assert cfg.optim == OptimConfig()
    assert cfg.schedule == ScheduleConfig()


def test_name_lists_come_from_the_registries():
    assert CHOICES["model.activation"] == tuple(ACTIVATIONS)
    assert set(LOSSES) == {"cross_entropy", "double_softmax", "mse"}
    assert LOSS_NAMES == ("auto", *LOSSES)
    assert CHOICES["encoding.kind"] == tuple(ENCODINGS)


def test_config_error_is_an_overfit_error_and_a_value_error():
    with pytest.raises(ConfigError) as info:
        RunConfig(seed=-1)
    assert isinstance(info.value, OverfitError)
    assert isinstance(info.value, ValueError)


# -- JSON round trip ---------------------------------------------------------------

NON_DEFAULT = [
    RunConfig(
        seed=3,
        loss="double_softmax",
        model=ModelConfig(input_range=None, hidden=(8, 16), activation="cos", batchnorm=True, init="torch"),
    ),
    RunConfig(
        preset="mine",
        device="cuda:1",
        data=DataConfig(image="pictures/cat.png", text="", font_size=None),
        optim=OptimConfig(lr=3e-3, batch_size=7, beta1=0.5, beta2=0.99, eps=1e-6),
        schedule=ScheduleConfig(steps=5, eval_every=1, eval_batch_size=3, log_every=2),
    ),
    RunConfig(
        data=DataConfig(text="A\nB", width=64, height=32, font_size=20, max_pixels=4096),
        model=ModelConfig(input_range=3.0, hidden=(5,), activation="tanh"),
    ),
]


@pytest.mark.parametrize("cfg", [RunConfig(), *NON_DEFAULT], ids=["default", "cos_bn_none", "image", "text"])
def test_json_round_trip_is_exact(cfg):
    text = cfg.to_json()
    back = RunConfig.from_json(text)
    assert back == cfg
    assert type(back.model.hidden) is tuple
    assert back.model.input_range == cfg.model.input_range
    # The same round trip through a plain dict.
    assert RunConfig.from_dict(json.loads(text)) == cfg


def test_json_form_is_sectioned_with_lists_and_nulls():
    cfg = NON_DEFAULT[0]
    data = json.loads(cfg.to_json())
    assert set(data) == {"preset", "seed", "loss", "device", "compile", "precision", "tensorboard", "data", "model", "encoding", "optim",
                         "schedule"}
    assert data["model"] == {"input_range": None, "hidden": [8, 16], "activation": "cos", "batchnorm": True, "init": "torch", "w0": 30.0}
    assert data["seed"] == 3
    assert data["optim"]["lr"] == 1e-4


def test_from_dict_fills_missing_keys_with_defaults_and_ints_as_floats():
    cfg = RunConfig.from_dict({"model": {"activation": "tanh"}, "optim": {"lr": 1}})
    assert cfg == dataclasses.replace(
        RunConfig(), model=ModelConfig(activation="tanh"), optim=OptimConfig(lr=1.0)
    )
    assert type(cfg.optim.lr) is float


def test_from_json_refuses_invalid_json():
    with pytest.raises(ConfigError, match="not valid JSON"):
        RunConfig.from_json("{")


# -- refusals: unknown keys, wrong types, invalid values ---------------------------


@pytest.mark.parametrize(
    "data, key",
    [
        ({"sed": 1}, "sed"),
        ({"model": {"activaton": "relu"}}, "model.activaton"),
        ({"optim": {"learning_rate": 1e-3}}, "optim.learning_rate"),
        ({"schedule": {"step": 10}}, "schedule.step"),
    ],
)
def test_from_dict_refuses_unknown_keys_naming_the_dotted_key(data, key):
    with pytest.raises(ConfigError, match=rf"^{key}: unknown config key"):
        RunConfig.from_dict(data)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"optim": {"lr": "1e-3"}}, "optim.lr"),
        ({"optim": {"batch_size": 1024.0}}, "optim.batch_size"),
        ({"seed": True}, "seed"),
        ({"model": {"hidden": 64}}, "model.hidden"),
        ({"model": {"hidden": [32, True]}}, r"model.hidden\[1\]"),
        ({"model": {"batchnorm": 1}}, "model.batchnorm"),
        ({"model": {"input_range": "1"}}, "model.input_range"),
        ({"data": {"font_size": 1.5}}, "data.font_size"),
        ({"loss": None}, "loss"),
    ],
)
def test_from_dict_refuses_wrong_types_naming_the_field(data, key):
    with pytest.raises(ConfigError, match=rf"^{key}: expected "):
        RunConfig.from_dict(data)


@pytest.mark.parametrize("data, where", [([1, 2], "config"), ({"model": 3}, "model"), ({"optim": [1]}, "optim")])
def test_from_dict_refuses_non_objects(data, where):
    with pytest.raises(ConfigError, match=rf"^{where}: expected an object"):
        RunConfig.from_dict(data)


@pytest.mark.parametrize(
    "data, key",
    [
        ({"optim": {"lr": -1e-3}}, "optim.lr"),
        ({"optim": {"lr": 0.0}}, "optim.lr"),
        ({"optim": {"lr": math.nan}}, "optim.lr"),
        ({"optim": {"lr": math.inf}}, "optim.lr"),
        ({"optim": {"batch_size": 0}}, "optim.batch_size"),
        ({"optim": {"beta1": 1.0}}, "optim.beta1"),
        ({"optim": {"beta2": math.nan}}, "optim.beta2"),
        ({"model": {"activation": "swish"}}, "model.activation"),
        ({"model": {"init": "xavier"}}, "model.init"),
        ({"model": {"input_range": 0.0}}, "model.input_range"),
        ({"model": {"input_range": -1.0}}, "model.input_range"),
        ({"model": {"input_range": math.nan}}, "model.input_range"),
        ({"model": {"hidden": []}}, "model.hidden"),
        ({"model": {"hidden": [64, 0]}}, "model.hidden"),
        ({"data": {"text": ""}}, "data.text"),
        ({"data": {"text": "   "}}, "data.text"),
        ({"data": {"width": 1}}, "data.width"),
        ({"data": {"width": 100_000, "height": 100_000}}, "data.width"),
        ({"seed": -1}, "seed"),
        ({"loss": "mse"}, "loss"),
        ({"schedule": {"steps": 0}}, "schedule.steps"),
        ({"schedule": {"eval_every": 0}}, "schedule.eval_every"),
    ],
)
def test_invalid_values_are_refused_naming_the_field(data, key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        RunConfig.from_dict(data)


def test_invalid_value_message_lists_the_choices():
    with pytest.raises(ConfigError) as info:
        ModelConfig(activation="swish")
    message = str(info.value)
    assert "'swish'" in message
    for name in ACTIVATIONS:
        assert name in message


def test_nan_from_json_text_is_refused():
    # Python's json accepts the NaN literal, so validation must catch it.
    with pytest.raises(ConfigError, match=r"^optim\.lr: "):
        RunConfig.from_json('{"optim": {"lr": NaN}}')


def test_image_path_lifts_the_text_and_canvas_checks():
    cfg = DataConfig(image="big.png", text="", width=100_000, height=100_000)
    assert cfg.image == "big.png"


# -- with_overrides ----------------------------------------------------------------


def test_with_overrides_parses_strings_by_field_type():
    cfg = RunConfig().with_overrides(
        {
            "model.hidden": "32,32",
            "model.input_range": "none",
            "model.batchnorm": "true",
            "model.activation": "tanh",
            "optim.lr": "1e-3",
            "seed": "7",
            "data.font_size": "40",
        }
    )
    assert cfg.model.hidden == (32, 32)
    assert cfg.model.input_range is None
    assert cfg.model.batchnorm is True
    assert cfg.model.activation == "tanh"
    assert cfg.optim.lr == 1e-3
    assert cfg.seed == 7
    assert cfg.data.font_size == 40
    # Untouched fields keep their values.
    assert cfg.optim.batch_size == 1024
    assert cfg.schedule == ScheduleConfig()


@pytest.mark.parametrize(
    "text, expected",
    [("64, 128", (64, 128)), ("8", (8,)), ("4,4,4,", (4, 4, 4))],
)
def test_with_overrides_parses_tuples(text, expected):
    assert RunConfig().with_overrides({"model.hidden": text}).model.hidden == expected


@pytest.mark.parametrize("text, expected", [("false", False), ("no", False), ("0", False), ("ON", True), ("yes", True)])
def test_with_overrides_parses_booleans(text, expected):
    base = RunConfig(model=ModelConfig(batchnorm=not expected))
    assert base.with_overrides({"model.batchnorm": text}).model.batchnorm is expected


def test_with_overrides_takes_typed_values_as_they_are():
    cfg = RunConfig().with_overrides({"seed": 7, "model.hidden": [16, 8], "model.input_range": None})
    assert (cfg.seed, cfg.model.hidden, cfg.model.input_range) == (7, (16, 8), None)


def test_with_overrides_leaves_the_original_unchanged():
    base = RunConfig()
    base.with_overrides({"seed": "5"})
    assert base.seed == 0


@pytest.mark.parametrize("key", ["model.activaton", "optimizer.lr", "sed", "model.hidden.width", "seed.x"])
def test_with_overrides_refuses_unknown_dotted_keys(key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        RunConfig().with_overrides({key: "1"})


def test_with_overrides_refuses_a_whole_section():
    with pytest.raises(ConfigError, match=r"^model: is a section"):
        RunConfig().with_overrides({"model": "relu"})


@pytest.mark.parametrize(
    "key, value",
    [
        ("optim.batch_size", "abc"),
        ("optim.batch_size", "1.5"),
        ("optim.lr", "fast"),
        ("model.hidden", "32,x"),
        ("model.input_range", "wide"),
        ("model.batchnorm", "maybe"),
        ("seed", "7.0"),
        ("seed", 7.0),
    ],
)
def test_with_overrides_refuses_unparsable_values_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"^{key}: expected "):
        RunConfig().with_overrides({key: value})


@pytest.mark.parametrize(
    "key, value",
    [("optim.lr", "nan"), ("optim.lr", "-1"), ("seed", "-3"), ("model.hidden", ""), ("model.input_range", "0"), ("loss", "l2")],
)
def test_with_overrides_validates_parsed_values(key, value):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        RunConfig().with_overrides({key: value})


# -- frozen --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj, name, value",
    [
        (RunConfig(), "seed", 1),
        (RunConfig().model, "activation", "tanh"),
        (RunConfig().optim, "lr", 1.0),
        (RunConfig().data, "text", "X"),
        (RunConfig().schedule, "steps", 1),
    ],
)
def test_configs_are_frozen(obj, name, value):
    before = getattr(obj, name)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(obj, name, value)
    assert getattr(obj, name) == before


# -- field_docs ----------------------------------------------------------------------


def test_field_docs_lists_dotted_keys_with_type_and_default():
    docs = field_docs()
    assert docs["model.activation"] == ("str", '"relu"')
    assert docs["optim.lr"] == ("float", "0.0001")
    assert docs["model.hidden"] == ("list of int", "[64, 256, 64]")
    assert docs["model.input_range"] == ("float or null", "1.0")
    assert docs["seed"] == ("int", "0")
    # Only leaves: sections are not settable keys.
    assert not {"model", "optim", "data", "schedule"} & set(docs)


def test_field_docs_covers_every_leaf_and_each_key_is_settable():
    docs = field_docs()
    expected = {f.name for f in dataclasses.fields(RunConfig) if f.name not in ("data", "model", "encoding", "optim", "schedule")}
    for section, cls in (("data", DataConfig), ("model", ModelConfig), ("encoding", EncodingConfig), ("optim", OptimConfig), ("schedule", ScheduleConfig)):
        expected |= {f"{section}.{f.name}" for f in dataclasses.fields(cls)}
    assert set(docs) == expected
    # Setting every key to its documented default gives back the default config.
    defaults = {key: json.loads(default) for key, (_, default) in docs.items()}
    assert RunConfig().with_overrides(defaults) == RunConfig()


def test_describe_fields_gives_docs_and_choices_for_forms():
    fields = {f.key: f for f in describe_fields()}
    assert set(fields) == set(field_docs())
    act = fields["model.activation"]
    assert act.choices == tuple(ACTIVATIONS)
    assert act.default == "relu" and act.type == "str" and act.doc.startswith("Activation after each hidden layer")
    assert fields["data.mode"].choices == ("binary", "gray", "rgb")
    assert fields["encoding.kind"].choices == tuple(ENCODINGS)
    assert fields["model.hidden"].default == [64, 256, 64]
    assert fields["optim.lr"].choices is None
    assert fields["model.w0"].applies_when == ("model.activation", ("siren", "gauss"))
    assert fields["encoding.sigma"].applies_when == ("encoding.kind", ("fourier",))
    assert fields["encoding.per_level_scale"].applies_when == ("encoding.kind", ("grid",))
    assert fields["model.activation"].applies_when is None
    # Conditions name real fields and real values.
    for f in fields.values():
        if f.applies_when:
            key, values = f.applies_when
            assert set(values) <= set(fields[key].choices)
    # Every field has its docstring.
    assert all(f.doc for f in fields.values()), [k for k, f in fields.items() if not f.doc]


# -- evaluation schedule --------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {"steps": 1003, "eval_every": 100},
    {"steps": 1000, "eval_every": 100, "eval_every_late": 300, "eval_late_from": 250},
    {"steps": 100_000, "eval_every": 500, "eval_every_late": 2500, "eval_late_from": 20_000},
    {"steps": 50, "eval_every": 10, "eval_every_late": 7, "eval_late_from": 80},  # late never starts
])
def test_evaluation_steps_match_evaluates_at_step_by_step(kwargs):
    sched = ScheduleConfig(**kwargs)
    assert sched.evaluation_steps() == [0] + [s for s in range(1, sched.steps + 1) if sched.evaluates_at(s)]
    assert sched.evaluation_steps()[-1] == sched.steps


def test_late_evaluations_are_sparser():
    sched = ScheduleConfig(steps=100_000, eval_every=500, eval_every_late=2500, eval_late_from=20_000)
    steps = sched.evaluation_steps()
    assert len(steps) == 73 and 19_500 in steps and 20_500 not in steps and 22_500 in steps


@pytest.mark.parametrize("key, value", [("schedule.eval_every_late", "0"), ("schedule.eval_late_from", "-1")])
def test_bad_late_schedule_is_refused(key, value):
    with pytest.raises(ConfigError) as info:
        RunConfig().with_overrides({key: value})
    assert info.value.field == key


# -- caps on what the fields add up to --------------------------------------------------


@pytest.mark.parametrize("data, key, words", [
    ({"schedule": {"eval_batch_size": (1 << 20) + 1}}, "schedule.eval_batch_size", "more than the limit of 1,048,576"),
    ({"data": {"text": "A", "font_size": 60000}}, "data.font_size", "more than the limit of 4,096"),
    # 300,000 layers of width 1 fit any memory budget, yet pin the training thread and write 60 MB metrics lines.
    ({"model": {"hidden": [1] * 300_000}}, "model.hidden", "300,000 hidden layers: more than the limit of 64 (a plain MLP"),
    ({"model": {"hidden": [65537]}}, "model.hidden", "65,537 units in a layer: more than the limit of 65,536"),
    ({"optim": {"batch_size": 1 << 24}}, "optim.batch_size", "16,777,216 coordinates: more than the limit of 1,048,576"),
    ({"data": {"text": "A", "width": 64, "height": 32, "font_size": 257}}, "data.font_size",
     "larger than a 64 x 32 canvas warrants (at most 256)"),
    ({"schedule": {"steps": 10**10, "eval_every": 1}}, "schedule.eval_every", "10,000,000,001 evaluations"),
    ({"schedule": {"steps": 200_000, "eval_every": 2}}, "schedule.eval_every", "100,001 evaluations: more than the limit of 100,000"),
    ({"schedule": {"steps": 10**6, "eval_every": 1000, "eval_every_late": 1, "eval_late_from": 500}},
     "schedule.eval_every_late", "999,501 evaluations"),
])
def test_caps_refuse_naming_the_field(data, key, words):
    with pytest.raises(ConfigError, match=rf"^{key}: ") as info:
        RunConfig.from_dict(data)
    assert words in str(info.value)


def test_caps_allow_their_limits():
    assert RunConfig.from_dict({"schedule": {"eval_batch_size": 1 << 20}}).schedule.eval_batch_size == 1 << 20
    assert RunConfig.from_dict({"optim": {"batch_size": 1 << 20}}).optim.batch_size == 1 << 20
    assert len(RunConfig.from_dict({"model": {"hidden": [2] * 64}}).model.hidden) == 64
    assert RunConfig.from_dict({"data": {"width": 1024, "height": 64, "font_size": 4096}}).data.font_size == 4096
    assert RunConfig.from_dict({"data": {"width": 64, "height": 32, "font_size": 256}}).data.font_size == 256
    # A picture file has no canvas: only the absolute limit applies to the (unused) font size.
    assert RunConfig.from_dict({"data": {"image": "cat.png", "width": 2, "height": 2, "font_size": 4000}}).data.font_size == 4000
    assert ScheduleConfig(steps=99_999, eval_every=1).evaluation_count() == 100_000  # steps 0 .. 99,999: the limit


def test_evaluation_count_is_the_number_of_evaluation_steps():
    for steps in (1, 7, 10, 50):
        for every in (1, 3, 10, 60):
            for late in (None, 1, 4, 7):
                for start in (0, 5, 10, 49, 50, 80):
                    sched = ScheduleConfig(steps=steps, eval_every=every, eval_every_late=late, eval_late_from=start)
                    assert sched.evaluation_count() == len(sched.evaluation_steps()), sched


@pytest.mark.parametrize("overrides", [
    # Each is refused alone against the defaults; together, in this order, they are valid.
    {"data.width": "10000", "data.height": "10000", "data.max_pixels": "200000000"},
    {"schedule.eval_every": "1", "schedule.steps": "5000"},
    {"data.font_size": "4096", "data.width": "1024"},
])
def test_with_overrides_does_not_depend_on_their_order(overrides):
    cfg = RunConfig().with_overrides(overrides)
    assert cfg == RunConfig().with_overrides(dict(reversed(list(overrides.items()))))
    for key, value in overrides.items():
        assert str(configio.get_path(cfg, key)) == value


def test_with_overrides_still_refuses_the_first_bad_value():
    with pytest.raises(ConfigError, match=r"^schedule\.eval_every: must be at least 1"):
        RunConfig().with_overrides({"schedule.eval_every": "0", "schedule.steps": "10", "model.hidden": "0"})
    with pytest.raises(ConfigError, match=r"^schedule\.eval_every: 100,001 evaluations"):
        RunConfig().with_overrides({"schedule.eval_every": "1", "seed": "3"})
