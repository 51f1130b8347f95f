"""Tests for overfit.errors: it imports nothing of overfit's, messages read "field: detail", and the type tree."""

from __future__ import annotations

import ast
import pathlib
import re
import subprocess
import sys

import pytest

from overfit import errors
from overfit.errors import (
    ConfigError,
    DeviceError,
    ExportError,
    MissingDependency,
    NothingToLearnWarning,
    OverfitError,
    RenderError,
    ReproduceError,
    RunBusyError,
    RunExistsError,
    RunFolderError,
    TargetError,
    TrainingDiverged,
    UnknownPresetError,
)

# -- no imports of ours ---------------------------------------------------------------


def test_module_source_imports_nothing_of_overfits():
    tree = ast.parse(pathlib.Path(errors.__file__).read_text())
    imported = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"relative import from {node.module!r}"
            imported.append(node.module)
    assert imported == ["__future__"]


def test_importing_errors_loads_no_other_overfit_module():
    # The package's __init__ imports config and friends; load errors.py as a plain file to see its own imports.
    path = pathlib.Path(errors.__file__)
    code = ("import importlib.util, sys\n"
            f"spec = importlib.util.spec_from_file_location('lonely_errors', {str(path)!r})\n"
            "mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)\n"
            "print(sorted(m for m in sys.modules if m == 'overfit' or m.startswith('overfit.') or m == 'torch'))\n"
            "print(mod.ConfigError('x', field='a.b'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    assert out == ["[]", "a.b: x"]


# -- messages -------------------------------------------------------------------------


def test_str_is_field_colon_detail_or_the_detail_alone():
    assert str(OverfitError("must be positive", field="optim.lr")) == "optim.lr: must be positive"
    assert str(OverfitError("something is wrong")) == "something is wrong"
    e = ConfigError("expected int, got 'x'", field="seed")
    assert (e.detail, e.field, str(e)) == ("expected int, got 'x'", "seed", "seed: expected int, got 'x'")
    assert str(RenderError("must be positive", field="scale")) == "scale: must be positive"
    assert str(RunFolderError("run folder x does not exist")) == "run folder x does not exist"
    # An empty field counts as none.
    assert str(ConfigError("detail", field="")) == "detail"


def test_target_error_str_is_the_detail_even_with_a_field():
    e = TargetError("picture 'a.png' does not exist", field="data.image")
    assert str(e) == "picture 'a.png' does not exist"
    assert e.field == "data.image" and e.detail == "picture 'a.png' does not exist"


def test_training_diverged_names_step_and_value():
    e = TrainingDiverged(17, float("nan"))
    assert (e.step, str(e), e.field) == (17, "training diverged: loss is nan at step 17", None)
    assert e.value != e.value  # NaN kept as given


def test_run_exists_error_names_the_name_field_and_keeps_the_path():
    e = RunExistsError("run folder runs/a already exists", "runs/a")
    assert (e.field, e.path, str(e)) == ("name", "runs/a", "name: run folder runs/a already exists")


def test_missing_dependency_says_what_to_install():
    e = MissingDependency("ONNX export", "onnx", "export", field="format")
    assert (e.package, e.extra, e.field) == ("onnx", "export", "format")
    assert str(e) == "format: ONNX export needs the onnx package: pip install 'overfit-lab[export]'"


def test_the_install_hint_names_the_distribution_pyproject_builds():
    # `pip install overfit` is another project on PyPI: the hint must name ours, as pyproject.toml does.
    pyproject = (pathlib.Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert re.search(r'^name = "(.+)"$', pyproject, re.M).group(1) == errors.DISTRIBUTION == "overfit-lab"


@pytest.mark.parametrize("error", [
    ConfigError("bad", field="seed"),
    UnknownPresetError("no preset named 'x'", field="preset"),
    TargetError("picture a.png does not exist", field="data.image"),
    TrainingDiverged(17, float("inf")),
    RunExistsError("run folder runs/a already exists", "runs/a"),
    RunBusyError("busy"),
    MissingDependency("ONNX export", "onnx", "export", field="format"),
], ids=lambda e: type(e).__name__)
def test_errors_survive_pickle_and_copy(error):
    # A library user's process pool sends them between processes; the subclasses' __init__ take other arguments.
    import copy
    import pickle

    for clone in (pickle.loads(pickle.dumps(error)), copy.deepcopy(error), copy.copy(error)):
        assert type(clone) is type(error)
        assert str(clone) == str(error)
        assert clone.args == error.args
        assert vars(clone) == vars(error)


# -- the type tree ----------------------------------------------------------------------


@pytest.mark.parametrize("cls, bases", [
    (ConfigError, (OverfitError, ValueError)),
    (UnknownPresetError, (ConfigError, OverfitError, ValueError, KeyError)),
    (TargetError, (OverfitError, ValueError)),
    (DeviceError, (OverfitError,)),
    (TrainingDiverged, (OverfitError,)),
    (RunFolderError, (OverfitError,)),
    (RunExistsError, (RunFolderError, OverfitError)),
    (RunBusyError, (RunFolderError, OverfitError)),
    (RenderError, (OverfitError, ValueError)),
    (ExportError, (OverfitError, ValueError)),
    (MissingDependency, (OverfitError,)),
    (ReproduceError, (OverfitError,)),
])
def test_subclass_relations(cls, bases):
    for base in bases:
        assert issubclass(cls, base), (cls, base)
    assert issubclass(cls, Exception)


def test_unrelated_types_stay_apart():
    assert not issubclass(RunFolderError, ValueError)  # a busy folder is not a bad value
    assert not issubclass(ConfigError, KeyError)
    assert not issubclass(TargetError, ConfigError)
    assert not issubclass(RunFolderError, ConfigError)
    assert issubclass(NothingToLearnWarning, UserWarning) and not issubclass(NothingToLearnWarning, OverfitError)


def test_catching_keyerror_catches_an_unknown_preset():
    # KeyError's own __str__ would quote the message; OverfitError's comes first.
    assert str(UnknownPresetError("no preset named 'x'", field="preset")) == "preset: no preset named 'x'"
    with pytest.raises(KeyError):
        raise UnknownPresetError("no preset named 'x'", field="preset")
    with pytest.raises(ValueError):
        raise UnknownPresetError("no preset named 'x'", field="preset")
