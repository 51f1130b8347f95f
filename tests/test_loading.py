"""Tests for overfit.loading: a run folder's model, a safetensors export back, the checksum, and `load`'s choice."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from test_export_families import FAMILIES, H, W, family, random_coords, reference, save_run_folder  # noqa: F401

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


# -- a checksum is not a signature: what a file says is validated before it is built -------------


def forged(tmp_path, name: str = "forged", **metadata: str):
    """An export of relu_1 whose metadata is replaced and whose checksum is recomputed, as anyone can."""
    from safetensors.torch import save

    from overfit.loading import safetensors_digest

    loaded = family("relu_1")
    tensors = {k: v.detach().clone().contiguous() for k, v in loaded.model.state_dict().items()}
    meta = {"format": "overfit-safetensors-1", "overfit_config": loaded.config.to_json(), "height": str(H), "width": str(W),
            "step": "0", **metadata}
    meta["sha256"] = safetensors_digest(tensors, meta)
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(save(tensors, metadata=meta))
    return path


def test_a_forged_config_too_large_to_build_is_refused_before_building_it(tmp_path, monkeypatch):
    import overfit.loading

    def refuse(*args, **kwargs):
        raise AssertionError("no model may be built from this file")

    huge = family("relu_1").config.with_overrides({"model.hidden": "65536,65536,65536"})
    path = forged(tmp_path, overfit_config=huge.to_json())
    monkeypatch.setattr(overfit.loading, "model_for", refuse)
    with pytest.raises(ExportError) as info:
        load_safetensors(path)
    text = str(info.value)
    assert text.startswith(f"{path}: loading the model needs ~") and "(model.hidden: " in text and "half the available memory" in text
    assert "\n" not in text


@pytest.mark.parametrize(("metadata", "words"), [
    ({"overfit_config": '{"model": {"hidden": [0]}}'}, "bad metadata: model.hidden: widths must be positive"),
    ({"overfit_config": '{"schedule": {"eval_batch_size": 99999999}}'}, "bad metadata: schedule.eval_batch_size"),
    ({"height": "1"}, "bad metadata: a 64 x 1 picture"),
    ({"height": "100000", "width": "100000"}, "at most data.max_pixels"),
    ({"step": "-5"}, "bad metadata"),
])
def test_forged_metadata_is_refused_in_one_line(tmp_path, metadata, words):
    with pytest.raises(ExportError) as info:
        load_safetensors(forged(tmp_path, **metadata))
    assert words in str(info.value) and "\n" not in str(info.value)


def test_a_run_folder_whose_model_would_not_fit_is_refused(tmp_path, monkeypatch):
    from overfit import memory

    run = save_run_folder(tmp_path / "run", family("relu_1"))
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    with pytest.raises(RunFolderError, match=r"loading the model needs .* but the budget is 500 B \(half the available memory\)$"):
        load_run_model(run)
