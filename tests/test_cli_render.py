"""Tests for overfit.cli.render and overfit.cli.export outputs: nothing is overwritten by accident (runs.check_new_output)."""

from __future__ import annotations

import hashlib

import pytest
from click.testing import CliRunner

from overfit.cli import main
from overfit.runs import is_run_file

from test_export_families import family, save_run_folder


@pytest.fixture
def run(tmp_path):
    return save_run_folder(tmp_path / "run", family("relu_1"))


def _digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir() if p.is_file()}


def _error(result) -> str:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_run_files_are_recognised(run, tmp_path):
    for name in ("checkpoint.pt", "config.json", "target.png", "metrics.jsonl", "progress.mp4", "frames/00000000.png"):
        assert is_run_file(run / name), name
    assert not is_run_file(run / "export" / "model.onnx")
    assert not is_run_file(tmp_path / "checkpoint.pt")  # not inside a run folder


@pytest.mark.parametrize("args, fragment", [
    (["render", "{run}", "-o", "{run}/target.png"], "is a file of the run folder"),
    (["render", "{run}", "-o", "{run}/target.png", "--force"], "is a file of the run folder"),
    (["export", "{run}", "-f", "onnx", "-o", "{run}/checkpoint.pt", "--force"], "is a file of the run folder"),
    (["export", "{run}", "-f", "safetensors", "-o", "{run}/config.json"], "is a file of the run folder"),
    (["export", "{run}", "-f", "onnx", "-o", "{out}/model.pt2"], "must end in .onnx"),
    (["export", "{run}", "-f", "onnx", "-o", "{out}"], "is a folder"),
])
def test_outputs_never_land_on_a_run_folders_own_files(run, tmp_path, args, fragment):
    out = tmp_path / "out"
    out.mkdir()
    before = _digests(run)
    result = CliRunner().invoke(main, [a.format(run=run, out=out) for a in args], catch_exceptions=False)
    line = _error(result)
    assert fragment in line and line.startswith("Error: -o: ")
    assert _digests(run) == before


@pytest.mark.parametrize("command", [["render", "{run}", "-o", "{path}"], ["export", "{run}", "-f", "safetensors", "-o", "{path}"]])
def test_an_existing_file_is_replaced_only_with_force(run, tmp_path, command):
    path = tmp_path / ("old.png" if command[0] == "render" else "old.safetensors")
    path.write_bytes(b"keep me")
    args = [a.format(run=run, path=path) for a in command]
    assert "exists" in _error(CliRunner().invoke(main, args, catch_exceptions=False))
    assert path.read_bytes() == b"keep me"
    result = CliRunner().invoke(main, [*args, "--force"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert path.read_bytes() != b"keep me"
