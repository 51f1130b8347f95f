"""Inference backends: a fitted network as a fast callable for `render.predict`.

`inference_backend(loaded, name, device)` gives the run's network evaluated eagerly
(`torch`), through `torch.compile` (`compiled`, bf16 where it is accurate enough) or
by onnxruntime (`onnxruntime`, through the ONNX conversion of `export.formats`).
Every backend has the model's own signature, (N, 2) float32 -> (N, C) outputs, so it
drops into `render.predict` in place of the model. Errors are `ExportError`s with
`field` "backend".
"""

from __future__ import annotations

import copy
import warnings
from typing import Callable

import torch
from torch import nn

from .devices import native_bf16
from .errors import ExportError, MissingDependency
from .export.formats import exportable_model, onnx_proto
from .errors import first_line
from .loading import LoadedRun
from .modes import get_mode
from .render import RENDER_CHUNK

BACKENDS = ("torch", "compiled", "onnxruntime")
# The compiled backend runs the MLP in bfloat16 where the hardware has native bf16 and the
# values stay within this of eager fp32 on PROBE_POINTS points of the picture: one level of
# an 8-bit picture. Otherwise (sine activations, Fourier features: errors grow with the
# frequencies) it stays fp32.
BF16_TOLERANCE = 1 / 255
PROBE_POINTS = 4096

Backend = Callable[[torch.Tensor], torch.Tensor]

__all__ = ["BACKENDS", "BF16_TOLERANCE", "PROBE_POINTS", "Backend", "inference_backend", "native_bf16"]


def _chunked(fn: Backend, chunk: int, precision: str) -> Backend:
    """fn applied to at most `chunk` rows at a time, so memory stays bounded for any N."""

    def run(yx: torch.Tensor) -> torch.Tensor:
        if yx.shape[0] <= chunk:
            return fn(yx)
        return torch.cat([fn(yx[i:i + chunk]) for i in range(0, yx.shape[0], chunk)])

    run.precision = precision  # type: ignore[attr-defined]
    return run


def inference_backend(loaded: LoadedRun, name: str = "torch", device: str | torch.device = "cpu",
                      chunk: int = RENDER_CHUNK, bf16: bool | None = None) -> Backend:
    """The run's network as a fast callable with the model's own signature: (N, 2) float32 -> (N, C) outputs.

    Outputs are what the model returns (logits for binary runs), so the callable drops
    into `render.predict(backend, mode, ...)` in place of the model. Its `precision`
    attribute says "fp32" or "bf16".

    - `torch`: eager PyTorch under inference_mode, fp32 (the reference).
    - `compiled`: `torch.compile` with inductor's freezing (weights folded in as constants,
      fused kernels). Batches are padded to `chunk` rows, so it compiles once, when the
      backend is made (seconds). `bf16=None` (auto) runs the MLP in bfloat16 where the
      CPU or GPU has native bf16 and the values on PROBE_POINTS points of the picture stay
      within BF16_TOLERANCE (1/255) of eager fp32, else in fp32 (within 1e-4 of eager);
      `bf16=False` always fp32, `bf16=True` bf16 without the check.
    - `onnxruntime`: the model exported to ONNX in memory and run by onnxruntime's CPU
      provider with PyTorch's thread count, fp32, within 1e-5 of eager. CPU only.
    """
    if name not in BACKENDS:
        raise ExportError(f"unknown backend {name!r}; choose from {', '.join(BACKENDS)}", field="backend")
    device = torch.device(device)
    if name == "onnxruntime" and device.type != "cpu":
        raise ExportError("onnxruntime runs on the CPU; use the cpu device, or the torch or compiled backend on this device",
                          field="backend")
    model = exportable_model(loaded.model).to(device)
    if name == "torch":
        def eager(yx: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return model(yx.to(device))
        return _chunked(eager, chunk, "fp32")
    if name == "compiled":
        return _compiled_backend(model, loaded, device, chunk, bf16)
    return _onnxruntime_backend(model, chunk)


class _BF16MLP(nn.Module):
    """A coordinate model with its MLP in bfloat16; the scaling and the encoding stay fp32 (phases need the digits)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.scaling, self.encoding = model.scaling, model.encoding
        self.mlp = copy.deepcopy(model.mlp).to(torch.bfloat16)

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.encoding(self.scaling(yx)).to(torch.bfloat16)).float()


def _compile_fixed(model: nn.Module, device: torch.device, chunk: int) -> Backend:
    """`model` through torch.compile with freezing, for batches of at most `chunk` rows, compiled now."""
    pad = torch.zeros(chunk, 2, device=device)
    with warnings.catch_warnings():  # importing inductor warns about torch.jit deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        compiled = torch.compile(model, dynamic=False, options={"freezing": True})

    def run(yx: torch.Tensor) -> torch.Tensor:
        n = yx.shape[0]
        with torch.inference_mode():
            if n == chunk:
                return compiled(yx.to(device))
            # One shape only: a shorter batch is padded, so torch.compile never recompiles.
            batch = pad.clone()
            batch[:n] = yx
            return compiled(batch)[:n].clone()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        run(pad[:1])  # compile now, not inside the first render
    return run


def _compiled_backend(model: nn.Module, loaded: LoadedRun, device: torch.device, chunk: int, bf16: bool | None) -> Backend:
    try:
        check = bf16 is None
        if bf16 is None:
            bf16 = native_bf16(device) and all(hasattr(model, n) for n in ("scaling", "encoding", "mlp"))
        if bf16:
            run = _compile_fixed(_BF16MLP(model), device, chunk)
            if not check or _bf16_error(model, run, loaded, device) <= BF16_TOLERANCE:
                return _chunked(run, chunk, "bf16")
        return _chunked(_compile_fixed(model, device, chunk), chunk, "fp32")
    except Exception as e:  # no C++ compiler, unsupported device, ...
        raise ExportError(f"torch.compile failed ({first_line(e)}); use the torch backend", field="backend") from None


def _bf16_error(model: nn.Module, run: Backend, loaded: LoadedRun, device: torch.device) -> float:
    """Largest difference of displayable values between `run` and eager fp32 on random points of the picture."""
    display = get_mode(loaded.mode).display
    g = torch.Generator().manual_seed(0)
    probe = (torch.rand(PROBE_POINTS, 2, generator=g) * torch.tensor([loaded.height, loaded.width]) - 0.5).to(device)
    with torch.inference_mode():
        exact = display(model(probe))
        return float((display(run(probe)) - exact).abs().max())


def _onnxruntime_backend(model: nn.Module, chunk: int) -> Backend:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependency("the onnxruntime backend", "onnxruntime", "export", field="backend") from None
    proto = onnx_proto(model.cpu(), field="backend")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    # predict() runs torch ops between chunks; onnxruntime's threads spin-waiting between calls
    # fight torch's OpenMP threads for the cores (measured 2-3x slower on 2 cores). Let them sleep.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"onnxruntime cannot load the model: {first_line(e)}", field="backend") from None
    input_name = session.get_inputs()[0].name

    def run(yx: torch.Tensor) -> torch.Tensor:
        x = yx.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(session.run(None, {input_name: x})[0])

    return _chunked(run, chunk, "fp32")
