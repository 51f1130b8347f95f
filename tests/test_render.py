"""Tests for overfit.render and `overfit render`: sampling grids, sizes, regions, modes and errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from overfit.cli import main
from overfit.config import RunConfig
from overfit.coords import pixel_grid
from overfit.losses import cross_entropy
from overfit.metrics import dense_metrics
from overfit.models import model_for
from overfit.errors import RenderError
from overfit.render import (MAX_RENDER_PIXELS, RENDER_BYTES_PER_VALUE, Region, check_output, output_size, predict, render_image,
                            render_memory, save_png)

TINY = {"data.text": "OV", "data.width": "48", "data.height": "24", "schedule.steps": "60", "schedule.eval_every": "30",
        "schedule.log_every": "10", "optim.batch_size": "1024"}


def test_whole_region_at_native_size_samples_the_pixel_centres():
    torch.testing.assert_close(Region.whole(7, 11).grid(7, 11), pixel_grid(7, 11))


def test_region_grid_chunks_concatenate_to_the_whole():
    region = Region(2.0, 10.0, -1.0, 5.0)
    whole = region.grid(9, 13)
    parts = torch.cat([region.grid(9, 13, s, s + 20) for s in range(0, 9 * 13, 20)])
    torch.testing.assert_close(parts, whole)
    # Row 0 is the top of the region (largest y), columns run left to right.
    assert whole[0].tolist() == pytest.approx([10.0 - 8 / 18, -1.0 + 6 / 26])
    assert whole[-1].tolist() == pytest.approx([2.0 + 8 / 18, 5.0 - 6 / 26])


def test_predict_at_native_size_equals_the_dense_evaluation():
    torch.manual_seed(0)
    model = model_for(RunConfig(), 20, 30).eval()
    labels = torch.randint(0, 2, (20, 30), dtype=torch.uint8)
    _, prob = dense_metrics(model, labels, cross_entropy)
    values = predict(model, "binary", 20, 30, Region.whole(20, 30), chunk=77)
    np.testing.assert_allclose(values, prob, atol=1e-6)


@pytest.mark.parametrize("mode, shape", [("gray", (6, 8)), ("rgb", (6, 8, 3))])
def test_predict_regression_shapes_and_clamping(mode, shape):
    cfg = RunConfig().with_overrides({"data.mode": mode})
    model = model_for(cfg, 6, 8).eval()
    with torch.no_grad():
        model.mlp[-1].bias.fill_(5.0)  # outputs far above 1
    values = predict(model, mode, 6, 8, Region.whole(6, 8))
    assert values.shape == shape
    assert values.max() <= 1.0 and values.min() >= 0.0


def test_output_sizes():
    whole = Region.whole(300, 1000)
    assert output_size(300, 1000, whole, None, None, None) == (300, 1000)
    assert output_size(300, 1000, whole, 4.0, None, None) == (1200, 4000)
    assert output_size(300, 1000, whole, None, 500, None) == (150, 500)
    assert output_size(300, 1000, whole, None, None, 30) == (30, 100)
    assert output_size(300, 1000, whole, None, 64, 64) == (64, 64)
    assert output_size(300, 1000, Region(0, 10, 0, 20), 8.0, None, None) == (80, 160)


@pytest.mark.parametrize("args, field, match", [
    ((0.0, None, None), "scale", "^scale: must be a positive number"),
    ((float("nan"), None, None), "scale", "^scale: must be a positive number"),
    ((2.0, 100, None), "scale", "^scale: give either scale or width/height"),
    ((1e6, None, None), "scale", "^scale: a .* render is larger than the limit"),
    ((1e308, None, None), "scale", "^scale: a inf x inf render is larger than the limit"),  # was an OverflowError
    ((None, 0, None), "width", "^width: the render would be 0 x 0 pixels"),
    ((None, None, 100_000), "height", "^height: a .* render is larger than the limit"),
])
def test_bad_sizes_are_refused(args, field, match):
    with pytest.raises(RenderError, match=match) as info:
        output_size(300, 1000, Region.whole(300, 1000), *args)
    assert info.value.field == field
    assert MAX_RENDER_PIXELS >= 16_000_000


def test_a_render_larger_than_the_memory_budget_is_refused_before_drawing():
    whole = Region.whole(300, 1000)
    need = render_memory(1200, 4000, "rgb")
    assert need == 1200 * 4000 * 3 * RENDER_BYTES_PER_VALUE  # float values, then 8-bit, per channel
    assert output_size(300, 1000, whole, 4.0, None, None, "rgb", budget=need) == (1200, 4000)
    with pytest.raises(RenderError, match=r"^scale: a 4000 x 1200 render needs ~576 MB of memory, more than 576 MB \(the budget given\)") as info:
        output_size(300, 1000, whole, 4.0, None, None, "rgb", budget=need - 1)
    assert info.value.field == "scale"
    with pytest.raises(RenderError, match="^width: a 4000 x 1200 render needs"):
        output_size(300, 1000, whole, None, 4000, None, "gray", budget=need // 3 - 1)


def test_a_region_too_large_for_a_number_is_refused_not_a_traceback():
    with pytest.raises(RenderError, match="^scale: a .* render is larger than the limit") as info:  # was an OverflowError
        output_size(300, 1000, Region(-1e308, 1e308, 0, 1), None, None, None)
    assert info.value.field == "scale"


def test_bad_regions_are_refused():
    with pytest.raises(RenderError, match="^region: needs y0 < y1 and x0 < x1") as info:
        Region(5, 5, 0, 1).check()
    assert info.value.field == "region"
    with pytest.raises(RenderError, match="^region: values must be finite") as info:
        Region(0, float("inf"), 0, 1).check()
    assert info.value.field == "region"


def test_render_image_modes():
    values = np.array([[0.2, 0.8]])
    assert render_image(values, "binary", "class").tolist() == [[0, 255]]
    assert render_image(values, "binary", "probability").tolist() == [[51, 204]]
    with pytest.raises(RenderError, match="^mode: 'class' is for runs that fit classes") as info:
        render_image(values, "gray", "class")
    assert info.value.field == "mode"
    with pytest.raises(RenderError, match="^mode: unknown render mode 'sepia'"):
        render_image(values, "binary", "sepia")


def test_save_png_writes_the_picture_and_refuses_a_bad_output(tmp_path):
    picture = np.array([[0, 128, 255]], dtype=np.uint8)
    save_png(picture, tmp_path / "p.png")
    assert np.asarray(Image.open(tmp_path / "p.png")).tolist() == picture.tolist()
    for path, detail in ((tmp_path / "missing" / "p.png", "does not exist"), (tmp_path / "p.jpg", "must end in .png")):
        with pytest.raises(RenderError, match=detail) as info:
            check_output(path)
        assert info.value.field == "output"
    with pytest.raises(RenderError, match="does not exist") as info:
        save_png(picture, tmp_path / "missing" / "p.png")
    assert info.value.field == "output" and not list(tmp_path.glob("*.tmp*"))


# -- the command ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("render")
    args = ["train", "fast", "-q", "--runs-dir", str(root), "--name", "r"] + [f"--{k}={v}" for k, v in TINY.items()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    return root / "r"


def test_render_command_scales_and_zooms(run_dir, tmp_path):
    out = tmp_path / "big.png"
    result = CliRunner().invoke(main, ["render", str(run_dir), "--scale", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (144, 72)
    zoom = tmp_path / "zoom.png"
    result = CliRunner().invoke(main, ["render", str(run_dir), "--region", "0", "12", "0", "24", "--width", "100",
                                       "--mode", "class", "-o", str(zoom)])
    assert result.exit_code == 0, result.output
    picture = np.asarray(Image.open(zoom))
    assert picture.shape == (50, 100) and set(np.unique(picture)) <= {0, 255}


@pytest.mark.parametrize("args, message", [
    (["render", "NOPE", "-o", "x.png"], "Error: run folder NOPE does not exist"),
    (["render", "RUN", "--scale", "0", "-o", "x.png"], "Error: --scale: must be a positive number"),
    (["render", "RUN", "-o", "x.jpg"], "Error: -o: x.jpg must end in .png"),
    (["render", "RUN", "-o", "missing/x.png"], "Error: -o: folder missing does not exist"),
    (["render", "RUN", "--device", "cuda:7", "-o", "x.png"], "Error: --device: device 'cuda:7' is not available"),
])
def test_render_command_errors(run_dir, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    args = [str(run_dir) if a == "RUN" else a for a in args]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith(message), result.output
    assert not (tmp_path / "x.png").exists()


@pytest.mark.slow
def test_a_16_megapixel_render_works(run_dir, tmp_path):
    out = tmp_path / "huge.png"
    result = CliRunner().invoke(main, ["render", str(run_dir), "--width", "4096", "--height", "4096", "--mode", "class", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with Image.open(out) as img:
        assert img.size == (4096, 4096)
        picture = np.asarray(img)
    # The picture is mostly background with some ink, as OVERFIT's "OV" is.
    assert 0.05 < (picture == 0).mean() < 0.6
