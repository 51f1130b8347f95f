"""Tests for overfit.export.webgl: the shader from the registries, the self-contained page, and the viewer in Chromium against PyTorch."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_export_families import FAMILIES, H, W, family, small_config  # noqa: F401

from overfit.activations import ACTIVATIONS
from overfit.cli import main
from overfit.encodings import ENCODINGS
from overfit.errors import ExportError
from overfit.export import webgl
from overfit.loading import LoadedRun, load_run_model
from overfit.models import model_for
from overfit.render import Region, predict



# -- the shader and the page ---------------------------------------------------------------------

def test_html_is_one_self_contained_file():
    page = webgl.export_html(family("relu_1"))
    assert "http://" not in page and "https://" not in page and "src=" not in page and "href=" not in page
    assert "default-src 'none'" in page  # the browser is told to fetch nothing
    payload = json.loads(page.split('id="model">', 1)[1].split("</script>", 1)[0])
    assert payload["meta"]["height"] == H and payload["macs"] == 2 * 64 + 64 * 256 + 256 * 64 + 64 * 2
    assert len(page) < 400_000  # relu_1: the weights as float32 base64, plus the page


def test_every_preset_exports_to_html_and_safetensors():
    from overfit.export import export_safetensors
    from overfit.presets import PRESETS

    for name, preset in PRESETS.items():
        cfg = preset.config.with_overrides({"data.text": "OV", "data.width": str(W), "data.height": str(H)})
        loaded = LoadedRun(model_for(cfg, H, W).eval(), cfg, H, W, 0)
        glsl, _, macs = webgl.build_shader(loaded)
        assert glsl.startswith("#version 300 es") and macs > 0, name
        assert webgl.export_html(loaded).count("__OVERFIT_") == 0, name
        assert export_safetensors(loaded)[:8] != b"", name


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_every_registered_activation_has_its_registry_glsl_in_the_shader(name):
    cfg = small_config({"model.activation": name, "model.hidden": "8", "model.w0": "2.5"})
    glsl, _, macs = webgl.build_shader(LoadedRun(model_for(cfg, H, W).eval(), cfg, H, W, 0))
    assert f"b[j] = {ACTIVATIONS[name].glsl('s', 2.5)};" in glsl
    assert f"// Linear 2 -> 8, {name}" in glsl and macs == 2 * 8 + 8 * 2


@pytest.mark.parametrize("kind", ENCODINGS)
def test_every_registered_encoding_has_a_shader_form(kind):
    overrides = {"encoding.kind": kind, "model.hidden": "8"}
    if kind == "grid":
        overrides["encoding.log2_hashmap_size"] = "8"  # the finer levels hashed
    cfg = small_config(overrides)
    model = model_for(cfg, H, W).eval()
    glsl, textures, macs = webgl.build_shader(LoadedRun(model, cfg, H, W, 0))
    first_layer = model.encoding.out_features * 8
    assert f"// Linear {model.encoding.out_features} -> 8" in glsl
    assert macs >= first_layer + 8 * 2
    assert [t["uniform"] for t in textures] == (["u_w", "u_table"] if kind == "grid" else ["u_w"])


def test_html_refuses_a_network_the_shader_cannot_hold():
    cfg = small_config({"model.hidden": "2048"})
    loaded = LoadedRun(model_for(cfg, H, W).eval(), cfg, H, W, 0)
    with pytest.raises(ExportError, match="wider than the viewer's limit") as info:
        webgl.export_html(loaded)
    assert info.value.field == "format" and info.value.detail.endswith("export onnx or pt2 instead")


def test_packer_lays_pieces_on_texel_boundaries_and_floats_read_back_exactly():
    packer = webgl.Packer()
    assert packer.add(np.arange(5)) == 0 and packer.add(np.ones((2, 2))) == 2 and packer.texels == 3
    tex = packer.texture("u_w", 4)
    data = np.frombuffer(base64.b64decode(tex["data"]), dtype="<f4")
    assert (tex["width"], tex["height"]) == (4, 1) and data[:12].tolist() == [0, 1, 2, 3, 4, 0, 0, 0, 1, 1, 1, 1]
    table, per_row = webgl.Packer.table(np.arange(12, dtype=np.float32).reshape(2, 6))  # 6 features: 2 texels per row
    assert per_row == 2 and table["format"] == "RGBA32F"
    rows = np.frombuffer(base64.b64decode(table["data"]), dtype="<f4")[:16].reshape(2, 8)
    assert rows[:, :6].tolist() == np.arange(12).reshape(2, 6).tolist() and not rows[:, 6:].any()
    for x in (0.1, 30.0, 1e-8, -2.5e7, float(np.float32(np.pi))):
        assert np.float32(float(webgl.glsl_float(x))) == np.float32(x)
    with pytest.raises(ExportError, match="non-finite"):
        webgl.glsl_float(float("inf"))


# -- the viewer in a browser -----------------------------------------------------------------------

@pytest.fixture
def browser(chromium):
    """The session's Chromium (tests/conftest.py), with WebGL in software."""
    return chromium


def open_viewer(browser, html_path: Path, width: int, height: int):
    page = browser.new_page(viewport={"width": width, "height": height}, device_scale_factor=1)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(html_path.as_uri())
    error = page.evaluate("window.overfit && window.overfit.error")
    assert not error, error
    page.evaluate("overfit.idle()")
    assert requests == [html_path.as_uri()]  # nothing fetched besides the page itself
    return page


def canvas_values(page, channels: int) -> np.ndarray:
    px = page.evaluate("overfit.pixels()")
    rgba = np.array(px["data"], dtype=np.uint8).reshape(px["height"], px["width"], 4)
    return (rgba[..., 0] if channels == 1 else rgba[..., :3]).astype(np.float64) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(np.mean((a - b) ** 2), 1e-12)))


def test_html_viewer_shows_the_trained_run_like_pytorch(browser, trained_run, tmp_path):
    result = CliRunner().invoke(main, ["export", str(trained_run), "--format", "html"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    path = trained_run / "export" / "model.html"
    assert str(path) in result.output
    loaded = load_run_model(trained_run)
    page = open_viewer(browser, path, 2 * W, 2 * H)  # the whole picture, 2 canvas pixels per picture pixel
    got = canvas_values(page, 1)
    expected = predict(loaded.model, loaded.mode, 2 * H, 2 * W, Region.whole(H, W))
    assert ((got > 0.5) == (expected > 0.5)).mean() >= 0.99
    assert 0.2 < (expected > 0.5).mean() < 0.95  # both classes are on screen

    # Zoom with the wheel over the canvas's centre, then drag: the view follows and says where it is.
    page.mouse.move(W, H)
    page.mouse.wheel(0, -400)
    page.wait_for_function("() => overfit.zoom() > 1.5", timeout=30_000)
    before = page.evaluate("overfit.view.cx")
    page.mouse.down()
    page.mouse.move(W - 40, H, steps=4)
    page.mouse.up()
    page.wait_for_function(f"() => overfit.view.cx > {before}", timeout=30_000)
    assert page.inner_text("#coords").startswith("y ") and "zoom" in page.inner_text("#zoom")
    page.close()


@pytest.mark.parametrize("name", FAMILIES)
def test_html_viewer_matches_pytorch_for_each_family(browser, tmp_path, name):
    loaded = family(name)
    path = tmp_path / f"{name}.html"
    path.write_text(webgl.export_html(loaded), encoding="utf-8")
    page = open_viewer(browser, path, 2 * W, 2 * H)
    got = canvas_values(page, loaded.config.out_channels if loaded.mode == "rgb" else 1)
    expected = predict(loaded.model, loaded.mode, 2 * H, 2 * W, Region.whole(H, W))
    if loaded.mode == "binary":
        assert ((got > 0.5) == (expected > 0.5)).mean() >= 0.99
    assert psnr(got, expected) >= 40.0, name
    # A zoomed-in region: the viewer's coordinates follow the run's convention there too.
    page.evaluate("overfit.showRegion(4, 12, 10, 26)")
    page.evaluate("overfit.idle()")
    expected = predict(loaded.model, loaded.mode, 2 * H, 2 * W, Region(4, 12, 10, 26))
    assert psnr(canvas_values(page, got.shape[-1] if got.ndim == 3 else 1), expected) >= 40.0, name
    page.close()
