"""The models that the export, loading, inference and WebGL tests share, and checks that they are worth testing.

`family(name)` is one small model per family the formats must cover; `trained_run` a
real run folder; `save_run_folder` writes a model into a run folder as training leaves
one. The other test files import these by name.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch

from overfit.config import RunConfig
from overfit.loading import LoadedRun
from overfit.models import model_for
from overfit.modes import get_mode
from overfit.recorder import Recorder
from overfit.runs import TARGET, RunFolder
from overfit.targets import load_target
from overfit.training import Trainer

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
    return RunConfig().with_overrides({"data.text": "OV", "data.width": str(W), "data.height": str(H), **overrides})


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
    generator = torch.Generator().get_state()
    folder.save_checkpoint({"format": "overfit-checkpoint-1", "config": loaded.config.to_json(), "step": loaded.step,
                            "train_seconds": 0.0, "model": loaded.model.state_dict(),
                            "optimizer": torch.optim.Adam(loaded.model.parameters()).state_dict(),
                            "train_gen": generator, "eval_gen": generator})
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A real run folder: relu_1 on a tiny 'OV', trained for 200 steps the way `overfit train` does."""
    cfg = small_config({"optim.lr": "3e-3", "optim.batch_size": "256", "schedule.steps": "200", "schedule.eval_every": "100",
                        "schedule.eval_batch_size": "256"})
    trainer = Trainer(cfg, load_target(cfg.data))
    folder = RunFolder.create(tmp_path_factory.mktemp("runs"), "ov", cfg.preset)
    recorder = Recorder(folder)
    try:
        recorder.start(trainer)
        trainer.run([lambda event: recorder(event) if event.kind != "end" else None])  # no videos: not what is tested
    finally:
        folder.unlock()
    assert trainer.history[-1]["dense_acc"] > 0.8  # a picture worth comparing
    return folder.path


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
