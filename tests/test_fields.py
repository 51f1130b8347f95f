"""Tests for overfit.fields: every config leaf described, choices and "applies when" derived from the registries.

The help texts must not need the package's .py sources (a compiled or zipped install).
"""

from __future__ import annotations

import compileall
import dataclasses
import functools
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

import overfit
from overfit import configio
from overfit.activations import ACTIVATIONS
from overfit.config import INIT_NAMES, LOSS_NAMES, RunConfig
from overfit.encodings import ENCODINGS
from overfit.errors import ConfigError
from overfit.fields import APPLIES_WHEN, CHOICES, SUGGESTIONS, FieldInfo, describe_fields, field_docs
from overfit.losses import LOSSES
from overfit.modes import MODES


def leaves(cls: type = RunConfig, prefix: str = "") -> list[str]:
    """Every leaf of a config dataclass, walked independently of `fields`."""
    out = []
    for f in dataclasses.fields(cls):
        tp = configio.hints(cls)[f.name]
        out += leaves(tp, f"{prefix}{f.name}.") if dataclasses.is_dataclass(tp) else [prefix + f.name]
    return out


def test_describe_fields_covers_every_leaf_in_declaration_order():
    keys = [f.key for f in describe_fields()]
    assert keys == leaves()
    assert len(keys) == len(set(keys))
    assert keys[:5] == ["preset", "seed", "loss", "device", "compile"]
    assert {"data.text", "model.hidden", "encoding.sigma", "optim.lr_decay_steps", "schedule.log_every"} <= set(keys)


def test_every_doc_is_a_real_sentence():
    for f in describe_fields():
        assert isinstance(f, FieldInfo)
        assert f.doc.strip(), f.key
        assert len(f.doc) > 10 and "\n" not in f.doc, f.key


def test_every_key_is_settable_with_its_default():
    cfg = RunConfig()
    for f in describe_fields():
        assert cfg.with_overrides({f.key: f.default}) == cfg, f.key


def test_types_and_defaults_in_json_form():
    fields = {f.key: f for f in describe_fields()}
    assert (fields["model.hidden"].type, fields["model.hidden"].default) == ("list of int", [64, 256, 64])
    assert (fields["model.input_range"].type, fields["model.input_range"].default) == ("float or null", 1.0)
    assert (fields["data.image"].type, fields["data.image"].default) == ("str or null", None)
    assert (fields["compile"].type, fields["compile"].default) == ("bool", False)
    assert (fields["seed"].type, fields["seed"].default) == ("int", 0)
    for f in describe_fields():
        json.dumps(f.default)  # plain JSON, for the lab's form


def test_field_docs_is_type_and_default_as_json_text():
    docs = field_docs()
    assert list(docs) == leaves()
    assert docs["model.hidden"] == ("list of int", "[64, 256, 64]")
    assert docs["data.image"] == ("str or null", "null")
    assert docs["preset"] == ("str", '"relu_1"')
    for key, (_, default) in docs.items():
        assert json.loads(default) == next(f.default for f in describe_fields() if f.key == key)


def test_choices_come_from_the_registries():
    from_registries = {
        "loss": LOSS_NAMES,
        "data.mode": tuple(MODES),
        "model.activation": tuple(ACTIVATIONS),
        "model.init": INIT_NAMES,
        "encoding.kind": tuple(ENCODINGS),
    }
    assert {key: CHOICES[key] for key in from_registries} == from_registries
    assert set(CHOICES) <= set(leaves())
    assert LOSS_NAMES == ("auto", *LOSSES)
    fields = {f.key: f for f in describe_fields()}
    for key, choices in CHOICES.items():
        assert fields[key].choices == choices
        assert fields[key].default in choices
    assert [f.key for f in describe_fields() if f.choices is not None] == [k for k in leaves() if k in CHOICES]


def test_suggestions_are_valid_values_of_free_text_fields_and_offered_only_there():
    fields = {f.key: f for f in describe_fields()}
    assert fields["data.holdout"].suggestions == ("none", "checkerboard", "0.1", "0.25", "0.5")
    assert set(SUGGESTIONS) <= set(leaves()) and not set(SUGGESTIONS) & set(CHOICES)  # a fixed set is a choice, not a suggestion
    for key, f in fields.items():
        assert f.suggestions == SUGGESTIONS.get(key), key
    cfg = RunConfig()
    for key, values in SUGGESTIONS.items():
        assert fields[key].type == "str" and fields[key].default in values, key
        for value in values:  # each one is taken as it is offered
            assert functools.reduce(getattr, key.split("."), cfg.with_overrides({key: value})) == value
    # Only suggested, not enforced: another fraction is taken too, and a wrong value still refused by the config.
    assert cfg.with_overrides({"data.holdout": "0.3"}).data.holdout == "0.3"
    with pytest.raises(ConfigError) as refused:
        cfg.with_overrides({"data.holdout": "half"})
    assert refused.value.field == "data.holdout"


def test_applies_when_is_derived_from_the_registries_fields():
    assert APPLIES_WHEN["model.w0"] == ("model.activation", ("siren", "gauss"))
    assert APPLIES_WHEN["encoding.sigma"] == ("encoding.kind", ("fourier",))
    assert APPLIES_WHEN["encoding.features"] == ("encoding.kind", ("fourier",))
    assert APPLIES_WHEN["encoding.frequencies"] == ("encoding.kind", ("positional",))
    grid = ["encoding.levels", "encoding.features_per_level", "encoding.log2_hashmap_size",
            "encoding.base_resolution", "encoding.per_level_scale"]
    for key in grid:
        assert APPLIES_WHEN[key] == ("encoding.kind", ("grid",)), key
    # Independent derivation: a field applies with exactly the entries that list it.
    expected = {}
    for chooser, registry in (("model.activation", ACTIVATIONS), ("encoding.kind", ENCODINGS)):
        for name, entry in registry.items():
            for key in entry.fields:
                expected.setdefault(key, (chooser, []))[1].append(name)
    assert APPLIES_WHEN == {k: (c, tuple(v)) for k, (c, v) in expected.items()}
    fields = {f.key: f for f in describe_fields()}
    for key, f in fields.items():
        assert f.applies_when == APPLIES_WHEN.get(key), key
    # Fields every run reads apply always.
    for key in ("model.hidden", "model.activation", "encoding.kind", "optim.lr", "seed"):
        assert fields[key].applies_when is None


def test_every_registry_field_names_a_real_leaf():
    keys = set(leaves())
    for registry in (ACTIVATIONS, ENCODINGS):
        for name, entry in registry.items():
            assert set(entry.fields) <= keys, name


def test_field_docs_work_from_compiled_files_without_sources(tmp_path):
    # A compiled install (.pyc only): help texts must not read source files.
    package = pathlib.Path(overfit.__file__).parent
    copy = tmp_path / "overfit"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert compileall.compile_dir(str(copy), quiet=1, legacy=True)
    for source in copy.rglob("*.py"):
        source.unlink()
    assert not list(copy.rglob("*.py")) and (copy / "fields.pyc").is_file()
    code = (
        "import json, overfit, overfit.fields as f\n"
        "print(json.dumps({'file': overfit.__file__, 'docs': f.field_docs(),\n"
        "                  'described': [[x.key, x.doc] for x in f.describe_fields()]}))\n"
    )
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    out = json.loads(done.stdout)
    assert out["file"] == str(copy / "__init__.pyc")
    assert {k: tuple(v) for k, v in out["docs"].items()} == field_docs()
    assert out["described"] == [[f.key, f.doc] for f in describe_fields()]


@pytest.mark.parametrize("key", ["model.w0", "encoding.sigma", "optim.lr_final"])
def test_docs_say_what_the_field_does(key):
    doc = next(f.doc for f in describe_fields() if f.key == key)
    word = {"model.w0": "siren", "encoding.sigma": "fourier", "optim.lr_final": "decay"}[key]
    assert word in doc
