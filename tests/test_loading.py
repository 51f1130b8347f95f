"""Tests for overfit.loading: a run folder's model, a safetensors export back, the checksum, and `load`'s choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_export_families import FAMILIES, H, W, family, random_coords, reference, save_run_folder, trained_run  # noqa: F401

from overfit.errors import ExportError, RunFolderError
from overfit.export import export_safetensors
from overfit.loading import load, load_run_model, load_safetensors
from overfit.render import Region, predict


def test_load_run_model_gives_the_trained_model(trained_run):
    loaded = load_run_model(trained_run)
    assert (loaded.height, loaded.width, loaded.step, loaded.mode) == (H, W, 200, "binary")
    assert not loaded.model.training
    # The rendered picture is the last evaluation frame the run saved.
    frame = np.asarray(Image.open(trained_run / "frames" / "00000200.png"))
    values = predict(loaded.model, "binary", H, W, Region.whole(H, W))
    assert np.abs(np.rint(values * 255) - frame).max() <= 1


@pytest.mark.parametrize("name", FAMILIES)
def test_safetensors_round_trip_gives_identical_outputs(tmp_path, name):
    loaded = family(name)
    path = tmp_path / "model.safetensors"
    path.write_bytes(export_safetensors(loaded))
    back = load(path)
    assert (back.config, back.height, back.width, back.step) == (loaded.config, H, W, 0)
    yx = random_coords()
    assert torch.equal(reference(back, yx), reference(loaded, yx))


def test_load_takes_a_run_folder_or_a_safetensors_file(tmp_path):
    run = save_run_folder(tmp_path / "run", family("grid"))
    (tmp_path / "m.safetensors").write_bytes(export_safetensors(family("grid")))
    yx = random_coords(500)
    for source in (run, tmp_path / "m.safetensors"):
        assert torch.equal(reference(load(source), yx), reference(family("grid"), yx)), source
    (tmp_path / "m.onnx").write_bytes(b"not a run")
    with pytest.raises(RunFolderError, match="is not a run folder"):
        load(tmp_path / "m.onnx")


def test_tampered_or_foreign_safetensors_is_refused(tmp_path):
    from safetensors.torch import save

    good = export_safetensors(family("relu_1"))
    header = int.from_bytes(good[:8], "little")

    flipped = bytearray(good)
    flipped[8 + header + 100] ^= 0x40  # one bit of one weight
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ExportError, match="corrupted or was modified"):
        load_safetensors(tmp_path / "flipped.safetensors")

    assert b'"step":"0"' in good
    edited = good.replace(b'"step":"0"', b'"step":"9"')  # same length: still valid safetensors
    (tmp_path / "edited.safetensors").write_bytes(edited)
    with pytest.raises(ExportError, match="corrupted or was modified"):
        load_safetensors(tmp_path / "edited.safetensors")

    (tmp_path / "cut.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(ExportError, match="not a readable safetensors file"):
        load_safetensors(tmp_path / "cut.safetensors")

    (tmp_path / "foreign.safetensors").write_bytes(save({"w": torch.ones(3)}))
    with pytest.raises(ExportError, match="not an overfit safetensors export"):
        load_safetensors(tmp_path / "foreign.safetensors")

    with pytest.raises(ExportError, match="does not exist"):
        load_safetensors(tmp_path / "missing.safetensors")
