"""Tests for the `overfit` group and the CLI's error wording: commands load lazily, errors read as flags."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from overfit.cli import COMMANDS, main
from overfit.cli.errors import flag, message, reported
from overfit.errors import (
    ConfigError,
    ExportError,
    OverfitError,
    RenderError,
    ReproduceError,
    RunExistsError,
    RunFolderError,
    TargetError,
)

HEAVY = ("torch", "numpy", "matplotlib", "tqdm", "PIL", "fastapi", "uvicorn")


def modules_after(*args: str) -> set[str]:
    """Modules loaded by `overfit ARGS` in a fresh interpreter (of HEAVY and the command modules)."""
    code = ("import sys\nfrom overfit.cli import main\n"
            f"try:\n    main({list(args)!r})\nexcept SystemExit:\n    pass\n"
            "print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(out.splitlines()[-1].split())


@pytest.mark.parametrize("args", [["--help"], ["presets"], ["train", "--help"]])
def test_help_and_presets_import_no_heavy_library(args):
    loaded = modules_after(*args)
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_help_imports_no_command_module():
    loaded = modules_after("--help")
    assert not {f"overfit.cli.{module}" for module, _ in COMMANDS.values()} & loaded
    assert "overfit.cli.presets" in modules_after("presets")


def test_the_lazy_command_list_matches_the_commands():
    result = CliRunner().invoke(main, ["--help"])
    ctx = click.Context(main)
    assert sorted(main.list_commands(ctx)) == sorted(COMMANDS)
    for name, (_, help_line) in COMMANDS.items():
        command = main.get_command(ctx, name)
        assert command.name == name
        # The table's line is the start of the command's own help, so --help says what the command says.
        assert command.help.startswith(help_line), name
        assert f"{name}  " in result.output and click.Command(name, help=help_line).get_short_help_str(100) == command.get_short_help_str(100)
    assert main.get_command(ctx, "nope") is None
    assert "No such command 'nope'" in CliRunner().invoke(main, ["nope"]).output


def test_version():
    from overfit import __version__

    assert CliRunner().invoke(main, ["--version"]).output.strip() == f"overfit, version {__version__}"


# -- error wording -------------------------------------------------------------------------


@pytest.mark.parametrize("field, expected", [
    ("region", "--region"), ("scale", "--scale"), ("output", "-o"), ("format", "--format"), ("backend", "--backend"),
    ("name", "--name"), ("runs_dir", "--runs-dir"), ("out_dir", "--out"), ("schedule.steps", "--steps"),
    ("data.max_pixels", "--max-pixels"), ("model.w0", "--model.w0"), ("loss", "--loss"),
])
def test_fields_become_the_flags_a_person_types(field, expected):
    assert flag(field) == expected


def test_messages_put_the_flag_before_the_detail():
    assert message(RenderError("needs y0 < y1", field="region")) == "--region: needs y0 < y1"
    assert message(RenderError("x.jpg must end in .png", field="output")) == "-o: x.jpg must end in .png"
    assert message(ConfigError("must be at least 1, got 0", field="schedule.steps")) == "--steps: must be at least 1, got 0"
    assert message(ExportError("unknown format 'tflite'", field="format")) == "--format: unknown format 'tflite'"
    assert message(ReproduceError("holds another run", field="out_dir")) == "--out: holds another run"
    # A TargetError's detail names the picture; the flag to change still leads.
    assert message(TargetError("picture a.png is too big", field="data.max_pixels")) == "--max-pixels: picture a.png is too big"
    # Without a field, the detail alone.
    assert message(RunFolderError("run folder x does not exist")) == "run folder x does not exist"
    assert message(RunExistsError("exists", "runs/r")) == \
        "run folder runs/r already exists; continue it with --resume runs/r or choose another --name"


@click.command()
@click.option("--kind")
def failing(kind: str) -> None:
    with reported():
        if kind == "render":
            raise RenderError("needs y0 < y1 and x0 < x1, got y 5.0..1.0", field="region")
        if kind == "bug":
            raise ValueError("a bug keeps its traceback")
        raise OverfitError("no field here")


def test_an_overfit_error_is_one_error_line_and_exit_1():
    result = CliRunner().invoke(failing, ["--kind", "render"])
    assert result.exit_code == 1
    assert result.output.splitlines() == ["Error: --region: needs y0 < y1 and x0 < x1, got y 5.0..1.0"]
    assert CliRunner().invoke(failing, ["--kind", "plain"]).output == "Error: no field here\n"
    bug = CliRunner().invoke(failing, ["--kind", "bug"])
    assert isinstance(bug.exception, ValueError)
