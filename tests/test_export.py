"""Tests for overfit.export: pt2 and ONNX against PyTorch, `export_run` and `overfit export`, bad input.

The shared model families are in test_export_families.py; safetensors loading is tested
in test_loading.py, the html format in test_webgl.py.
"""

from __future__ import annotations

import io
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_export_families import FAMILIES, H, W, family, random_coords, reference, save_run_folder, small_config  # noqa: F401

from overfit import export as ex
from overfit.cli import main
from overfit.config import RunConfig
from overfit.errors import ExportError, RunFolderError
from overfit.loading import LoadedRun, load, load_run_model
from overfit.models import model_for
from overfit.runs import CHECKPOINT


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line_error(result, *fragments: str) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


# -- pt2, onnx: same numbers as PyTorch -------------------------------------------------------

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


def test_formats_describe_their_output():
    import onnx

    for name, output in (("relu_1", "P(background) (N,)"), ("rgb_tanh", "rgb values (N, 3) clamped to [0, 1]")):
        props = {p.key: p.value for p in onnx.load_from_string(ex.export_onnx(family(name))).metadata_props}
        assert props["output"] == output and props["mode"] == family(name).mode
    assert list(ex.FORMATS) == ["pt2", "onnx", "safetensors", "html"]
    assert [f.extension for f in ex.FORMATS.values()] == ["pt2", "onnx", "safetensors", "html"]


# -- export_run: the library entry point -------------------------------------------------------

def test_export_run_writes_the_default_path_and_refuses_bad_input(tmp_path):
    run = save_run_folder(tmp_path / "run", family("fourier"))
    path = ex.export_run(run, "safetensors")
    assert path == run / "export" / "model.safetensors" == ex.default_output(run, "safetensors")
    assert torch.equal(reference(load(path), random_coords()), reference(family("fourier"), random_coords()))

    def refused(*args, field):
        with pytest.raises(ExportError) as info:
            ex.export_run(*args)
        assert info.value.field == field
        return info.value.detail

    assert refused(run, "tflite", field="format") == "unknown format 'tflite'; choose from pt2, onnx, safetensors, html"
    assert refused(run, "html", tmp_path / "missing" / "m.html", field="output").endswith("does not exist")
    assert refused(run, "html", tmp_path, field="output").endswith("is a folder; give a file name")
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(run / "config.json", fresh / "config.json")
    assert "nothing to export" in refused(fresh, "onnx", field=None)
    with pytest.raises(RunFolderError, match="does not exist"):
        ex.export_run(tmp_path / "nope", "onnx")


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
    assert torch.equal(reference(load(tmp_path / "m.safetensors"), yx), expected)


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
    one_line_error(invoke("export", str(run), "-f", "tflite"), "--format: unknown format 'tflite'", "pt2, onnx, safetensors, html")
    one_line_error(invoke("export", str(run), "-f", "html", "-o", str(tmp_path / "missing" / "m.html")), "-o: ", "does not exist")
    one_line_error(invoke("export", str(run), "-f", "html", "-o", str(tmp_path)), "-o: ", "is a folder")
    (tmp_path / "file").write_text("x")
    one_line_error(invoke("export", str(run), "-f", "pt2", "-o", str(tmp_path / "file" / "m.pt2")), "-o: ", "cannot write")

    wide = small_config({"model.hidden": "2048"})
    wide_run = save_run_folder(tmp_path / "wide", LoadedRun(model_for(wide, H, W).eval(), wide, H, W, 0))
    one_line_error(invoke("export", str(wide_run), "-f", "html"), "--format: ", "onnx or pt2")
    assert not list(tmp_path.rglob("*.tmp")) and not (wide_run / "export" / "model.html").exists()
    assert (run / CHECKPOINT).is_file()


# -- what a shared file reveals ----------------------------------------------------------------


@pytest.mark.parametrize("image", ["{tmp}/private/pictures/cat.png", "C:\\Users\\someone\\Pictures\\cat.png"])
def test_html_names_the_picture_without_a_path_of_this_machine(tmp_path, image):
    image = image.replace("{tmp}", str(tmp_path))
    loaded = family("relu_1")
    cfg = loaded.config.with_overrides({"data.image": image})
    run = save_run_folder(tmp_path / "runs" / "cat-run", LoadedRun(loaded.model, cfg, H, W, 0))
    assert RunConfig.from_json((run / "config.json").read_text()).data.image == image  # the run knows where its picture was
    result = invoke("export", str(run), "-f", "html")
    assert result.exit_code == 0, result.output
    page = (run / "export" / "model.html").read_text()
    assert "cat.png" in page and "cat-run" in page
    for private in (str(tmp_path), "private", "Users", "someone", "\\\\"):
        assert private not in page, private


def exported_config_json(path, fmt: str) -> str:
    """The config JSON an exported file carries, read as its reader would (not by searching its bytes)."""
    if fmt == "pt2":
        extra = {"overfit/overfit_config": ""}
        torch.export.load(path, extra_files=extra)
        return extra["overfit/overfit_config"]
    if fmt == "onnx":
        import onnx

        return {p.key: p.value for p in onnx.load(path).metadata_props}["overfit_config"]
    from safetensors import safe_open

    with safe_open(path, "pt") as f:
        return f.metadata()["overfit_config"]


@pytest.mark.parametrize("fmt", ["pt2", "onnx", "safetensors"])
def test_exported_files_name_the_picture_without_a_path_of_this_machine(tmp_path, fmt):
    image = str(tmp_path / "private" / "pictures" / "cat.png")
    loaded = family("relu_1")
    cfg = loaded.config.with_overrides({"data.image": image})
    run = save_run_folder(tmp_path / "runs" / "cat-run", LoadedRun(loaded.model, cfg, H, W, 0))
    result = invoke("export", str(run), "-f", fmt)
    assert result.exit_code == 0, result.output
    text = exported_config_json(run / "export" / f"model.{fmt}", fmt)
    assert RunConfig.from_json(text) == cfg.with_overrides({"data.image": "cat.png"})
    assert str(tmp_path) not in text and "private" not in text
