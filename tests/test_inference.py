"""Tests for overfit.inference: each backend against eager PyTorch, bf16's accuracy check, errors, and `overfit render --backend`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from test_export_families import H, W, family, random_coords

from overfit import inference as inf
from overfit.cli import main
from overfit.errors import ExportError
from overfit.render import Region, predict


def test_backends_agree_with_eager_pytorch():
    loaded = family("relu_1")
    region = Region(-3.0, H + 2.0, -5.0, W + 5.0)
    expected = predict(loaded.model, loaded.mode, 40, 90, region)  # 3600 pixels: one short chunk
    yx = random_coords(9000)  # two full chunks of 4096 and a short one
    raw = loaded.model(yx).detach()
    for name in inf.BACKENDS:
        backend = inf.inference_backend(loaded, name)
        tolerance = {"torch": 0.0, "compiled": 1e-4, "onnxruntime": 1e-5}[name]
        if backend.precision == "bf16":  # compiled, on hardware with native bf16
            assert inf.native_bf16(torch.device("cpu"))
            tolerance = inf.BF16_TOLERANCE
        got = predict(backend, loaded.mode, 40, 90, region)
        assert np.abs(got - expected).max() <= tolerance, name
        if backend.precision == "fp32":
            assert (backend(yx) - raw).abs().max().item() <= 10 * tolerance + 1e-6, name
        else:
            assert backend(yx).shape == raw.shape


def test_compiled_backend_keeps_fp32_where_bf16_is_not_accurate_enough():
    # SIREN: sin(30 x) turns bf16's 3 significant digits into visible errors.
    loaded = family("gray_siren")
    backend = inf.inference_backend(loaded, "compiled")
    assert backend.precision == "fp32"
    expected = predict(loaded.model, loaded.mode, H, W, Region.whole(H, W))
    assert np.abs(predict(backend, loaded.mode, H, W, Region.whole(H, W)) - expected).max() <= 1e-4


def test_backend_errors_are_clear():
    with pytest.raises(ExportError, match="^backend: unknown backend 'tensorrt'") as info:
        inf.inference_backend(family("relu_1"), "tensorrt")
    assert info.value.field == "backend"
    with pytest.raises(ExportError, match="runs on the CPU") as info:
        inf.inference_backend(family("relu_1"), "onnxruntime", device="cuda")
    assert info.value.field == "backend"


def test_render_takes_a_backend_and_a_safetensors_export(trained_run, tmp_path):
    from PIL import Image

    def invoke(*args: str):
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    assert invoke("export", str(trained_run), "-f", "safetensors", "-o", str(tmp_path / "m.safetensors")).exit_code == 0
    pictures = {}
    for source, backend in ((trained_run, "torch"), (tmp_path / "m.safetensors", "onnxruntime")):
        out = tmp_path / f"{backend}.png"
        result = invoke("render", str(source), "--backend", backend, "--scale", "2", "-o", str(out))
        assert result.exit_code == 0, result.output
        pictures[backend] = np.asarray(Image.open(out), dtype=np.int16)
    assert pictures["torch"].shape == (2 * H, 2 * W)
    assert np.abs(pictures["torch"] - pictures["onnxruntime"]).max() <= 1
    result = invoke("render", str(trained_run), "--backend", "tensorrt", "-o", str(tmp_path / "x.png"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "unknown backend 'tensorrt'" in lines[0], result.output
