"""The network view: stored weights per evaluation, the view at a step, the picture, and `overfit inspect`."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from overfit.cli import main
from overfit.errors import RunFolderError
from overfit.images import read_png
from overfit.loading import nearest_step
from overfit.netview import DEAD, describe, network_view
from overfit.runs import RunFolder


@pytest.fixture
def run(network_run):
    return network_run  # tests/conftest.py: layers of 16 and 8 relu units, weights at steps 0, 10 and 20


def test_weights_are_stored_at_each_evaluation_and_the_view_uses_the_last_at_or_before_a_step(run):
    assert RunFolder(run).weight_steps() == [0, 10, 20]
    assert network_view(run).step == 20 and network_view(run, 15).step == 10 and network_view(run, 10).step == 10
    assert nearest_step([0, 10, 20], None) == 20 and nearest_step([10, 20], 5) is None and nearest_step([], 3) is None


def test_the_view_has_a_tile_per_unit_and_counts_dead_units_from_their_maps(run):
    view = network_view(run, 0)
    assert [m.shape[0] for m in view.maps] == [16, 8] and view.activations == ["relu", "relu"]
    counts = describe(view)
    for layer, maps in enumerate(view.maps):
        assert counts[layer]["dead"] == int((maps.reshape(maps.shape[0], -1) == 0).all(axis=1).sum())
    assert counts[0]["dead"] > 0  # raw coordinates: units with two negative weights are 0 on the whole picture
    picture = view.picture()
    assert picture.ndim == 3 and picture.shape[2] == 3 and picture.dtype == np.uint8
    assert (picture.reshape(-1, 3) == DEAD).all(axis=1).any()  # their red frames


def test_resuming_drops_weights_written_after_the_checkpoint(run, tmp_path):
    copy = tmp_path / "raw"
    shutil.copytree(run, copy)
    RunFolder(copy).rewind(10)
    assert RunFolder(copy).weight_steps() == [0, 10]


def test_inspect_writes_the_view_and_names_the_step(run, tmp_path):
    out = tmp_path / "net.png"
    result = CliRunner().invoke(main, ["inspect", str(run), "--step", "12", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"{out}: step 10 of {run} (layer 1: ")
    assert read_png(out).shape == network_view(run, 10).picture().shape


def test_inspect_refuses_a_run_without_weights_and_a_run_file_as_output(run, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(run, bare)
    shutil.rmtree(bare / "weights")
    result = CliRunner().invoke(main, ["inspect", str(bare), "-o", str(tmp_path / "x.png")])
    assert result.exit_code == 1 and result.output.startswith("Error: ") and result.output.count("\n") == 1
    assert "no stored weights" in result.output
    with pytest.raises(RunFolderError, match="no stored weights"):
        network_view(bare)
    result = CliRunner().invoke(main, ["inspect", str(run), "-o", str(run / "final.png")])
    assert result.exit_code == 1 and "file of the run folder" in result.output


def test_one_loader_gives_a_runs_model_from_its_checkpoint_or_its_stored_weights(run, tmp_path):
    import torch

    from overfit.loading import load_run_model

    at_checkpoint = load_run_model(run)
    latest, middle = load_run_model(run, stored=True), load_run_model(run, stored=True, step=15)
    assert (at_checkpoint.step, latest.step, middle.step) == (20, 20, 10)
    assert (middle.height, middle.width) == (16, 32) and not middle.model.training
    stored = RunFolder(run).read_weights(10)
    assert all(torch.equal(middle.model.state_dict()[k], v) for k, v in stored.items())
    # The weights are stored in half precision: the checkpoint's, rounded.
    for k, v in latest.model.state_dict().items():
        assert torch.allclose(v, at_checkpoint.model.state_dict()[k], rtol=1e-3, atol=1e-4), k
    late = tmp_path / "late"
    shutil.copytree(run, late)
    (late / "weights" / "00000000.safetensors").unlink()
    with pytest.raises(RunFolderError, match="no stored weights at or before step 5") as e:
        load_run_model(late, stored=True, step=5)
    assert e.value.field == "step"
    with pytest.raises(ValueError, match="stored=True"):
        load_run_model(run, step=10)
