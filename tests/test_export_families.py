"""The models that the export, loading, inference and WebGL tests share, and checks that they are worth testing.

`family(name)` is one small model per family the formats must cover; `save_run_folder`
writes a model into a run folder as training leaves one. The other test files import these
by name; `trained_run`, a real run folder trained once per session, is in tests/conftest.py.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import tiny_config

from overfit.config import RunConfig
from overfit.loading import LoadedRun
from overfit.models import model_for
from overfit.modes import get_mode
from overfit.runs import CHECKPOINT_FORMAT, TARGET, RunFolder

H, W = 32, 64

# One small model per family the formats must cover; untrained, with weights made to give a varied picture.
FAMILIES = {
    "relu_1": {},
    "bn_relu": {"model.batchnorm": "true", "model.input_range": "none", "model.hidden": "32,64,32"},
    "fourier": {"encoding.kind": "fourier", "encoding.features": "16", "encoding.sigma": "3", "model.hidden": "32,32"},
    "positional": {"encoding.kind": "positional", "encoding.frequencies": "6", "model.hidden": "32,32", "model.activation": "gelu"},
    "siren": {"model.activation": "siren", "model.hidden": "32,32"},
    "grid": {"encoding.kind": "grid", "encoding.levels": "4", "encoding.log2_hashmap_size": "8", "model.hidden": "32"},
    "gray_siren": {"data.mode": "gray", "model.activation": "siren", "model.hidden": "32,32"},
    "rgb_tanh": {"data.mode": "rgb", "model.activation": "tanh", "model.hidden": "16,16"},
}


def small_config(overrides: dict[str, str]) -> RunConfig:
    """The default run on a 64 x 32 "OV", with dotted `overrides`."""
    return tiny_config({"data.text": "OV", "data.width": W, "data.height": H, **overrides}, base={})


@functools.cache
def family(name: str) -> LoadedRun:
    """A model of the family, eval mode, with BatchNorm statistics and grid tables that are not trivial."""
    cfg = small_config(FAMILIES[name])
    torch.manual_seed(0)
    model = model_for(cfg, H, W)
    with torch.no_grad():
        for p in model.encoding.parameters():  # grid tables start at +-1e-4: make them matter
            p.normal_()
        if cfg.model.batchnorm:
            model.train()
            for _ in range(3):
                model(torch.rand(256, 2) * torch.tensor([H, W]))
        if cfg.data.mode != "binary":
            model.mlp[-1].bias += 0.5  # values around mid-gray, not clamped to 0
    return LoadedRun(model.eval(), cfg, H, W, 0)


def random_coords(n: int = 10_000, seed: int = 0) -> torch.Tensor:
    """(n, 2) coordinates over the picture and a margin outside it."""
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 2, generator=g) * torch.tensor([H + 8.0, W + 8.0]) - 4.0


def reference(loaded: LoadedRun, yx: torch.Tensor) -> torch.Tensor:
    """What every format serves, written out: P(background) (N,) for binary, outputs clamped to [0, 1] (N, C) otherwise."""
    with torch.inference_mode():
        out = loaded.model(yx)
    return torch.softmax(out, dim=1)[:, 1] if loaded.mode == "binary" else out.clamp(0.0, 1.0)


def save_run_folder(path: Path, loaded: LoadedRun) -> Path:
    """A run folder holding `loaded` as a checkpoint, as training leaves one."""
    path.mkdir(parents=True)
    folder = RunFolder(path)
    folder.write_config(loaded.config)
    folder.write_picture(TARGET, np.full((loaded.height, loaded.width), 255, np.uint8))
    folder.save_checkpoint({"format": CHECKPOINT_FORMAT, "config": loaded.config.to_json(), "step": loaded.step,
                            "train_seconds": 0.0, "model": loaded.model.state_dict(),
                            "optimizer": torch.optim.Adam(loaded.model.parameters()).state_dict()})
    return path


# -- the families themselves ----------------------------------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_gives_a_varied_picture_in_range(name):
    loaded = family(name)
    values = reference(loaded, random_coords(2000))
    channels = get_mode(loaded.mode).picture_channels
    assert values.shape == ((2000,) if loaded.mode == "binary" else (2000, channels))
    assert 0.0 <= values.min() and values.max() <= 1.0
    assert values.std() > 1e-3  # not a constant picture: a format that dropped a layer would show


def test_saved_run_folder_reads_back_as_a_checkpoint(tmp_path):
    folder = RunFolder.open(save_run_folder(tmp_path / "run", family("relu_1")))
    assert folder.target_size() == (H, W) and folder.has_checkpoint()
    assert folder.checkpoint()["step"] == 0 and folder.config() == family("relu_1").config
