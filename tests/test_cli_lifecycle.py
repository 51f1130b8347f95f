"""Tests for overfit.cli.many: `overfit train` with several presets and --seeds."""

from __future__ import annotations

import click
import pytest
import torch

from overfit.cli.options import parse_seeds
from overfit.runs import RunFolder
from overfit.training import Trainer

from test_cli_train import SMALL, invoke, one_line_error


def test_parse_seeds_reads_ranges_and_lists_without_repeats():
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5") == [5]
    assert parse_seeds("0,3,5") == [0, 3, 5]
    assert parse_seeds("0-2,1,7") == [0, 1, 2, 7]


@pytest.mark.parametrize("text", ["", "a", "3-1", "1-", "-1", "0-5000", "1.5"])
def test_bad_seeds_are_refused(text):
    with pytest.raises(click.BadParameter):
        parse_seeds(text)


def test_presets_times_seeds_each_get_a_run_folder_equal_to_a_run_alone(tmp_path):
    result = invoke("train", "relu_1", "tanh_1", *SMALL, "--seeds", "0-1", "--steps", "40", "--eval-every", "20",
                    "--runs-dir", str(tmp_path), "--name", "m", "-q")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["m-relu_1-s0", "m-relu_1-s1", "m-tanh_1-s0", "m-tanh_1-s1"]
    for name in names:
        folder = RunFolder.open(tmp_path / name)
        assert [r["step"] for r in folder.metrics()] == [0, 20, 40]
        assert folder.status() == "done" and (folder.path / "progress.mp4").is_file()
        assert f"{folder.path}: dense accuracy" in result.output
    # Stacked, each run still equals the same run trained alone.
    folder = RunFolder.open(tmp_path / "m-tanh_1-s1")
    cfg = folder.config()
    assert (cfg.preset, cfg.seed) == ("tanh_1", 1)
    alone = Trainer(cfg)
    alone.run()
    stacked = folder.checkpoint()["model"]
    for key, value in alone.model.state_dict().items():
        torch.testing.assert_close(stacked[key], value, atol=1e-5, rtol=0)


def test_a_bad_config_among_many_creates_no_folder(tmp_path):
    result = invoke("train", "fast", "relu_1", *SMALL, "--seeds", "0-1", "--steps", "20", "--model.w0", "0",
                    "--runs-dir", str(tmp_path))
    one_line_error(result, "--model.w0")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())


def test_resume_takes_no_seeds(tmp_path):
    result = invoke("train", "--resume", str(tmp_path), "--seeds", "0-1")
    assert result.exit_code != 0 and "--seeds" in result.output


def test_a_run_that_fails_to_build_stops_every_run_before_any_folder(tmp_path):
    # relu_1 builds; grid's finest level would be far finer than the picture, found only when its model is built.
    result = invoke("train", "relu_1", "grid", *SMALL, "--steps", "20", "--encoding.per_level_scale", "100",
                    "--runs-dir", str(tmp_path))
    one_line_error(result, "per_level_scale")
    assert not tmp_path.exists() or not any(tmp_path.iterdir())
