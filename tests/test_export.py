"""Tests for export: each format against PyTorch, the HTML viewer in Chromium, backends, bad input."""

from __future__ import annotations

import functools
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from overfit import export as ex
from overfit.cli import main
from overfit.config import RunConfig
from overfit.models import model_for
from overfit.render import LoadedRun, Region, load_run_model, outputs_to_values, predict
from overfit.runs import CHECKPOINT, CHECKPOINT_FORMAT, RunFolder, save_checkpoint, write_atomic
from overfit.targets import load_target
from overfit.training import Trainer

H, W = 32, 64
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--use-gl=swiftshader", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]

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
    with torch.inference_mode():
        return outputs_to_values(loaded.model(yx), loaded.mode)


def save_run_folder(path: Path, loaded: LoadedRun) -> Path:
    """A run folder holding `loaded` as a checkpoint, as training leaves one."""
    path.mkdir(parents=True)
    write_atomic(path / "config.json", loaded.config.to_json())
    from PIL import Image

    Image.fromarray(np.full((loaded.height, loaded.width), 255, np.uint8)).save(path / "target.png")
    save_checkpoint(path, {"format": CHECKPOINT_FORMAT, "config": loaded.config.to_json(),
                           "model": loaded.model.state_dict(), "step": loaded.step})
    return path


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> Path:
    """A real run folder: relu_1 on a tiny 'OV', trained for 200 steps the way `overfit train` does."""
    cfg = small_config({"optim.lr": "3e-3", "optim.batch_size": "256", "schedule.steps": "200", "schedule.eval_every": "100",
                        "schedule.eval_batch_size": "256"})
    trainer = Trainer(cfg, load_target(cfg.data))
    folder = RunFolder.create(tmp_path_factory.mktemp("runs"), "ov", cfg.preset)
    try:
        folder.start(trainer)
        trainer.run(lambda event: folder(event) if event.kind != "end" else None)  # no videos: not what is tested
    finally:
        folder.unlock()
    assert trainer.history[-1]["dense_acc"] > 0.8  # a picture worth comparing
    return folder.path


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- pt2, onnx, safetensors: same numbers as PyTorch ------------------------------------------

@pytest.mark.parametrize("name", FAMILIES)
def test_pt2_program_matches_pytorch_for_any_batch(name):
    loaded = family(name)
    program = torch.export.load(io.BytesIO(ex.export_pt2(loaded)))
    yx = random_coords()
    out = program.module()(yx)
    assert out.shape == reference(loaded, yx).shape
    assert torch.allclose(out, reference(loaded, yx), atol=1e-6, rtol=0)
    assert torch.allclose(program.module()(yx[:1]), reference(loaded, yx[:1]), atol=1e-6, rtol=0)  # dynamic batch


@pytest.mark.parametrize("name", FAMILIES)
def test_onnx_with_onnxruntime_matches_pytorch_within_1e5(name):
    import onnx
    import onnxruntime as ort

    loaded = family(name)
    data = ex.export_onnx(loaded)
    proto = onnx.load_from_string(data)
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    props = {p.key: p.value for p in proto.metadata_props}
    assert RunConfig.from_json(props["overfit_config"]) == loaded.config and props["height"] == str(H)
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    yx = random_coords()
    out = session.run(None, {"yx": yx.numpy()})[0]
    expected = reference(loaded, yx).numpy()
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() <= 1e-5
    assert np.abs(session.run(None, {"yx": yx[:3].numpy()})[0] - expected[:3]).max() <= 1e-5


@pytest.mark.parametrize("name", FAMILIES)
def test_safetensors_round_trip_gives_identical_outputs(tmp_path, name):
    loaded = family(name)
    path = tmp_path / "model.safetensors"
    path.write_bytes(ex.export_safetensors(loaded))
    back = ex.load(path)
    assert (back.config, back.height, back.width, back.step) == (loaded.config, H, W, 0)
    yx = random_coords()
    assert torch.equal(reference(back, yx), reference(loaded, yx))


def test_tampered_or_foreign_safetensors_is_refused(tmp_path):
    from safetensors.torch import save

    good = ex.export_safetensors(family("relu_1"))
    header = int.from_bytes(good[:8], "little")

    flipped = bytearray(good)
    flipped[8 + header + 100] ^= 0x40  # one bit of one weight
    (tmp_path / "flipped.safetensors").write_bytes(bytes(flipped))
    with pytest.raises(ex.ExportError, match="corrupted or was modified"):
        ex.load_safetensors(tmp_path / "flipped.safetensors")

    assert b'"step":"0"' in good
    edited = good.replace(b'"step":"0"', b'"step":"9"')  # same length: still valid safetensors
    (tmp_path / "edited.safetensors").write_bytes(edited)
    with pytest.raises(ex.ExportError, match="corrupted or was modified"):
        ex.load_safetensors(tmp_path / "edited.safetensors")

    (tmp_path / "cut.safetensors").write_bytes(good[: len(good) // 2])
    with pytest.raises(ex.ExportError, match="not a readable safetensors file"):
        ex.load_safetensors(tmp_path / "cut.safetensors")

    (tmp_path / "foreign.safetensors").write_bytes(save({"w": torch.ones(3)}))
    with pytest.raises(ex.ExportError, match="not an overfit safetensors export"):
        ex.load_safetensors(tmp_path / "foreign.safetensors")


# -- backends ----------------------------------------------------------------------------------

def test_backends_agree_with_eager_pytorch():
    loaded = family("relu_1")
    region = Region(-3.0, H + 2.0, -5.0, W + 5.0)
    expected = predict(loaded.model, loaded.mode, 40, 90, region)  # 3600 pixels: one short chunk
    yx = random_coords(9000)  # two full chunks of 4096 and a short one
    raw = loaded.model(yx).detach()
    for name in ex.BACKENDS:
        backend = ex.inference_backend(loaded, name)
        tolerance = {"torch": 0.0, "compiled": 1e-4, "onnxruntime": 1e-5}[name]
        if backend.precision == "bf16":  # compiled, on hardware with native bf16
            assert ex.native_bf16(torch.device("cpu"))
            tolerance = ex.BF16_TOLERANCE
        got = predict(backend, loaded.mode, 40, 90, region)
        assert np.abs(got - expected).max() <= tolerance, name
        if backend.precision == "fp32":
            assert (backend(yx) - raw).abs().max().item() <= 10 * tolerance + 1e-6, name
        else:
            assert backend(yx).shape == raw.shape


def test_compiled_backend_keeps_fp32_where_bf16_is_not_accurate_enough():
    # SIREN: sin(30 x) turns bf16's 3 significant digits into visible errors.
    loaded = family("gray_siren")
    backend = ex.inference_backend(loaded, "compiled")
    assert backend.precision == "fp32"
    expected = predict(loaded.model, loaded.mode, H, W, Region.whole(H, W))
    assert np.abs(predict(backend, loaded.mode, H, W, Region.whole(H, W)) - expected).max() <= 1e-4


def test_backend_errors_are_clear():
    with pytest.raises(ex.ExportError, match="unknown backend 'tensorrt'"):
        ex.inference_backend(family("relu_1"), "tensorrt")
    with pytest.raises(ex.ExportError, match="runs on the CPU"):
        ex.inference_backend(family("relu_1"), "onnxruntime", device="cuda")


# -- the HTML viewer -----------------------------------------------------------------------------

def test_html_is_one_self_contained_file():
    page = ex.export_html(family("relu_1"))
    assert "http://" not in page and "https://" not in page and "src=" not in page and "href=" not in page
    assert "default-src 'none'" in page  # the browser is told to fetch nothing
    payload = json.loads(page.split('id="model">', 1)[1].split("</script>", 1)[0])
    assert payload["meta"]["height"] == H and payload["macs"] == 2 * 64 + 64 * 256 + 256 * 64 + 64 * 2
    assert len(page) < 400_000  # relu_1: the weights as float32 base64, plus the page


def test_every_preset_exports_to_html_and_safetensors():
    from overfit.presets import PRESETS

    for name, preset in PRESETS.items():
        cfg = preset.config.with_overrides({"data.text": "OV", "data.width": str(W), "data.height": str(H)})
        loaded = LoadedRun(model_for(cfg, H, W).eval(), cfg, H, W, 0)
        glsl, _, macs = ex.build_shader(loaded)
        assert glsl.startswith("#version 300 es") and macs > 0, name
        assert ex.export_html(loaded).count("__OVERFIT_") == 0, name
        assert ex.export_safetensors(loaded)[:8] != b"", name


def test_html_refuses_a_network_the_shader_cannot_hold():
    cfg = small_config({"model.hidden": "2048"})
    loaded = LoadedRun(model_for(cfg, H, W).eval(), cfg, H, W, 0)
    with pytest.raises(ex.ExportError, match="wider than the viewer's limit"):
        ex.export_html(loaded)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed: the HTML viewer cannot be checked in a browser here")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


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
    result = invoke("export", str(trained_run), "--format", "html")
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
    page.wait_for_function("() => overfit.zoom() > 1.5", timeout=5000)
    before = page.evaluate("overfit.view.cx")
    page.mouse.down()
    page.mouse.move(W - 40, H, steps=4)
    page.mouse.up()
    page.wait_for_function(f"() => overfit.view.cx > {before}", timeout=5000)
    assert page.inner_text("#coords").startswith("y ") and "zoom" in page.inner_text("#zoom")
    page.close()


@pytest.mark.parametrize("name", FAMILIES)
def test_html_viewer_matches_pytorch_for_each_family(browser, tmp_path, name):
    loaded = family(name)
    path = tmp_path / f"{name}.html"
    path.write_text(ex.export_html(loaded), encoding="utf-8")
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


# -- the command line ----------------------------------------------------------------------------

def test_cli_exports_every_format_of_a_trained_run(trained_run, tmp_path):
    import onnxruntime as ort

    loaded = load_run_model(trained_run)
    yx = random_coords(1000)
    expected = reference(loaded, yx)
    for fmt in ex.FORMATS:
        out = tmp_path / f"m.{fmt}"
        result = invoke("export", str(trained_run), "-f", fmt, "-o", str(out))
        assert result.exit_code == 0, result.output
        assert out.is_file() and str(out) in result.output
    assert torch.allclose(torch.export.load(tmp_path / "m.pt2").module()(yx), expected, atol=1e-6, rtol=0)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"yx": yx.numpy()})[0] - expected.numpy()).max() <= 1e-5
    assert torch.equal(reference(ex.load(tmp_path / "m.safetensors"), yx), expected)


def test_cli_default_output_goes_into_the_run_folder(tmp_path):
    run = save_run_folder(tmp_path / "run", family("fourier"))
    result = invoke("export", str(run), "--format", "safetensors")
    assert result.exit_code == 0, result.output
    assert (run / "export" / "model.safetensors").is_file()


def test_cli_bad_input_gives_one_clear_line(tmp_path):
    run = save_run_folder(tmp_path / "run", family("relu_1"))
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(run / "config.json", fresh / "config.json")  # a run that never reached a checkpoint
    one_line_error(invoke("export", str(fresh), "-f", "onnx"), "no checkpoint.pt", "nothing to export")
    one_line_error(invoke("export", str(tmp_path / "nope"), "-f", "onnx"), "does not exist")
    one_line_error(invoke("export", str(run), "-f", "tflite"), "unknown format 'tflite'", "pt2, onnx, safetensors, html")
    one_line_error(invoke("export", str(run), "-f", "html", "-o", str(tmp_path / "missing" / "m.html")), "does not exist")
    one_line_error(invoke("export", str(run), "-f", "html", "-o", str(tmp_path)), "is a folder")
    (tmp_path / "file").write_text("x")
    one_line_error(invoke("export", str(run), "-f", "pt2", "-o", str(tmp_path / "file" / "m.pt2")), "cannot write")

    wide = small_config({"model.hidden": "2048"})
    wide_run = save_run_folder(tmp_path / "wide", LoadedRun(model_for(wide, H, W).eval(), wide, H, W, 0))
    one_line_error(invoke("export", str(wide_run), "-f", "html"), "--format html", "onnx or pt2")
    assert not list(tmp_path.rglob("*.tmp")) and not (wide_run / "export" / "model.html").exists()
    assert (run / CHECKPOINT).is_file()


def test_render_takes_a_backend_and_a_safetensors_export(trained_run, tmp_path):
    from PIL import Image

    assert invoke("export", str(trained_run), "-f", "safetensors", "-o", str(tmp_path / "m.safetensors")).exit_code == 0
    pictures = {}
    for source, backend in ((trained_run, "torch"), (tmp_path / "m.safetensors", "onnxruntime")):
        out = tmp_path / f"{backend}.png"
        result = invoke("render", str(source), "--backend", backend, "--scale", "2", "-o", str(out))
        assert result.exit_code == 0, result.output
        pictures[backend] = np.asarray(Image.open(out), dtype=np.int16)
    assert pictures["torch"].shape == (2 * H, 2 * W)
    assert np.abs(pictures["torch"] - pictures["onnxruntime"]).max() <= 1
    one_line_error(invoke("render", str(trained_run), "--backend", "tensorrt", "-o", str(tmp_path / "x.png")),
                   "unknown backend 'tensorrt'")
