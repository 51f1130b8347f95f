"""A new mode takes one registry entry and its own functions: a toy mode trains end to end, and no module
outside the registry (and the functions it names) compares a mode's name."""

from __future__ import annotations

import ast
import pathlib

import numpy as np
import pytest
from helpers import LEARNS, tiny_config

from overfit import budget, modes
from overfit.config import RunConfig
from overfit.modes import MODES, PixelMemory, Regression
from overfit.targets import make_target
from overfit.training import train


class Darkness(Regression):
    """Toy mode: how dark each pixel is (1 - gray level), a regression target no module knows by name."""

    def target_array(self, target):
        return 1.0 - target.values  # (H, W, 1) float32: ink 1, background 0


DARKNESS = Darkness("darkness", "how dark each pixel is", out_channels=1, picture_channels=1, losses=("mse",),
                    headline="dense_loss", memory=PixelMemory(target=10, dense=200, held_out=16), shows_probability=False,
                    prediction_name="darkness", output_description="darkness (N, 1)",
                    display_glsl=("float g = clamp({o}[0].x, 0.0, 1.0);", "color = vec4(g, g, g, 1.0);"))


def tiny(mode: str, steps: int = 600) -> RunConfig:
    """The shared run that learns (tests/helpers.py LEARNS) in `mode`."""
    return tiny_config({"data.mode": mode, "schedule.steps": steps, "schedule.eval_every": steps // 2, "schedule.log_every": 100},
                       base=LEARNS)


def test_a_mode_registered_in_the_registry_alone_trains_end_to_end(monkeypatch):
    monkeypatch.setitem(MODES, "darkness", DARKNESS)
    cfg = tiny("darkness")
    assert cfg.loss_name == "mse" and cfg.out_channels == 1

    result = train(cfg)
    # The target is the mode's own array: 1 - gray / 255, where the binary labels say ink it is dark.
    gray = result.target.gray.astype(np.float32) / 255.0
    expected = 1.0 - gray
    assert np.allclose(DARKNESS.target_array(result.target)[:, :, 0], expected)
    assert expected[result.target.labels == 0].min() >= 1.0 - 128 / 255 - 1e-6
    first, last = result.history[0], result.history[-1]
    assert last["step"] == 600 and set(last) >= {"dense_loss", "dense_psnr", "dense_ssim", "batch_loss"}
    assert last["dense_loss"] < 0.5 * first["dense_loss"], (first["dense_loss"], last["dense_loss"])
    # Its headline (a loss: smaller is better) captions the run through the metric registry.
    assert DARKNESS.caption("toy", last) == f"toy   step 600   loss {last['dense_loss']:.4f}"

    # The budget reads the mode's memory per pixel: (its target bytes + the decoded picture) per pixel.
    est = budget.estimate(cfg, (24, 48))
    assert est.part("target").bytes == 24 * 48 * (10 + 4)
    assert est.part("dense evaluation").bytes >= 24 * 48 * 200


def test_the_target_keeps_the_channels_its_mode_fits():
    rgb = np.zeros((2, 3, 3), dtype=np.uint8)
    rgb[0, 0] = (255, 0, 0)
    assert make_target(rgb, "t", "rgb").image.shape == (2, 3, 3)
    gray = make_target(rgb, "t", "gray").image
    assert gray.shape == (2, 3) and gray[0, 0] == 76  # ITU-R 601-2 luma of pure red: 299 * 255 / 1000
    assert make_target(gray, "t", "rgb").image[0, 0].tolist() == [76, 76, 76]


MODE_NAMES = {"binary", "gray", "rgb"}


def _strings(node: ast.AST) -> set[str]:
    """The string constants in an expression, looking inside tuples, lists and sets."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return set().union(*(_strings(e) for e in node.elts)) if node.elts else set()
    return set()


def test_no_module_outside_the_registry_compares_a_modes_name():
    root = pathlib.Path(modes.__file__).parent
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "modes.py" and path.parent == root:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                names = set().union(*(_strings(n) for n in [node.left, *node.comparators]))
            elif isinstance(node, ast.Dict):
                names = set().union(*(_strings(k) for k in node.keys if k is not None)) if node.keys else set()
            else:
                continue
            if names & MODE_NAMES:
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    assert found == []


@pytest.mark.parametrize("name", sorted(MODE_NAMES))
def test_every_registered_mode_names_a_registered_headline(name):
    from overfit import metricinfo

    mode = MODES[name]
    assert metricinfo.known(mode.headline) and metricinfo.parse(mode.headline).scope == "dense_"
    assert (mode.fit_headline, mode.test_headline) == tuple(metricinfo.scoped(mode.headline, s) for s in ("fit_", "test_"))
