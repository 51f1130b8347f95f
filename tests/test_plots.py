"""Tests for overfit.plots: the PNG figures of a run, read back with Pillow and checked by value.

Sizes, layout (stacked or side by side), pixel colours, native resolution, and that no
temporary file is left in the folder.
"""

from __future__ import annotations

import os
import subprocess
import sys

import matplotlib.figure
import numpy as np
import pytest
from PIL import Image

from overfit import plots


# ----------------------------------------------------------------------------- new_figure


def test_import_is_cheap_and_new_figure_needs_no_pyplot():
    # matplotlib loads only when a figure is drawn, and never pyplot (its global figure list).
    code = (
        "import sys, overfit.plots as p; assert 'matplotlib' not in sys.modules; "
        "f = p.new_figure(3.0, 2.0, dpi=50); assert 'matplotlib.pyplot' not in sys.modules; "
        "print(f.canvas.get_width_height())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(150, 100)"


# ----------------------------------------------------------------------------- save_samples_plot


def test_save_samples_plot_writes_png(tmp_path):
    rng = np.random.default_rng(3)
    yx = np.stack([rng.uniform(0, 300, 1024), rng.uniform(0, 1000, 1024)], axis=1)
    labels = (yx[:, 0] > 150).astype(np.uint8)
    path = tmp_path / "samples.png"
    plots.save_samples_plot(yx, labels, 300, 1000, path, classes=("ink", "background"))

    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        assert 800 <= w <= 2000 and 250 <= h <= 1000
        assert w > 1.5 * h  # a wide picture gives a wide plot
        rgb = np.asarray(im.convert("RGB"), dtype=int)
    # Both classes are drawn: near-black ink points and the light blue background points.
    assert (rgb.max(axis=2) < 60).sum() > 100
    assert (np.abs(rgb - [0x8C, 0xBB, 0xE6]).max(axis=2) < 10).sum() > 100
    assert os.listdir(tmp_path) == ["samples.png"]

    with pytest.raises(ValueError):
        plots.save_samples_plot(yx[:, :1], labels, 300, 1000, tmp_path / "bad.png", classes=("ink", "background"))


def test_save_samples_plot_draws_at_most_its_cap_of_points(tmp_path, monkeypatch):
    from matplotlib.axes import Axes

    drawn, titles = [], []
    scatter, set_title = Axes.scatter, Axes.set_title
    monkeypatch.setattr(Axes, "scatter", lambda ax, x, y, **k: drawn.append(len(x)) or scatter(ax, x, y, **k))
    monkeypatch.setattr(Axes, "set_title", lambda ax, text, **k: titles.append(text) or set_title(ax, text, **k))
    n = plots.MAX_SCATTER_POINTS * 4  # a batch of millions passes the same way: only the first points are drawn
    yx = np.random.default_rng(0).uniform(0, 32, (n, 2))
    plots.save_samples_plot(yx, np.zeros(n), 32, 32, tmp_path / "s.png")
    plots.save_samples_plot(yx, (yx[:, 0] > 16).astype(np.uint8), 32, 32, tmp_path / "c.png", classes=("ink", "background"))
    assert drawn[0] == plots.MAX_SCATTER_POINTS and sum(drawn[1:]) == plots.MAX_SCATTER_POINTS
    assert f"{n:,} random coordinates ({plots.MAX_SCATTER_POINTS:,} of them shown)" in titles[0]


# ----------------------------------------------------------------------------- save_final_plot


def test_save_final_plot_wide_is_stacked_at_native_resolution(tmp_path):
    target = np.ones((300, 1000), dtype=np.uint8)
    target[100:140, 200:300] = 0  # a 40 x 100 black block
    prob = target.astype(np.float64)
    path = tmp_path / "final.png"
    plots.save_final_plot(target, prob, path, title="relu_1 · step 100,000 · accuracy 96.1 %")

    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
        gray = np.asarray(im.convert("L"))
    assert 1000 <= w <= 1100  # native width plus margins
    assert h > 2 * 300  # stacked vertically
    # Exactly two black 40 x 100 blocks (target and prediction): 1 image pixel = 1 PNG pixel.
    black = gray < 10
    assert black.sum() == 2 * 40 * 100
    cols = np.flatnonzero(black.any(axis=0))
    assert cols.max() - cols.min() + 1 == 100
    assert os.listdir(tmp_path) == ["final.png"]


def test_save_final_plot_square_is_side_by_side_and_upscaled(tmp_path):
    target = np.ones((64, 64), dtype=np.uint8)
    target[:, :32] = 0
    prob = np.where(target == 1, 0.9, np.nan)  # NaN is drawn as undecided gray, not a hole
    path = tmp_path / "final.png"
    plots.save_final_plot(target, prob, path)

    with Image.open(path) as im:
        w, h = im.size
        gray = np.asarray(im.convert("L"))
    assert w > 1.5 * h  # side by side
    assert w >= 2 * 64 * 6  # small pictures are scaled up to stay readable
    assert (np.abs(gray.astype(int) - 128) <= 1).sum() > 32 * 64  # the NaN half is mid-gray
    with pytest.raises(ValueError):
        plots.save_final_plot(target, prob[:, :10], tmp_path / "bad.png")


def test_save_final_plot_failure_leaves_no_temp(tmp_path, monkeypatch):
    def broken_savefig(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", broken_savefig)
    with pytest.raises(OSError):
        plots.save_final_plot(np.ones((4, 4), np.uint8), np.ones((4, 4)), tmp_path / "final.png")
    assert os.listdir(tmp_path) == []
