"""The file formats of a served network: pt2 (torch.export), ONNX and safetensors.

Each takes a `LoadedRun` and gives the file's bytes. pt2 and ONNX carry the network
with its output head (`ServedModel`); safetensors carries the weights, the JSON config
and the picture size under a sha256 that `loading.load_safetensors` checks.
Errors are `ExportError`s with `field` "format" (or the caller's `field`, for the
onnxruntime backend that converts through `onnx_proto`).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import logging
import warnings
from pathlib import PurePath
from typing import Any, Iterator

import torch
from torch import nn

from ..config import RunConfig
from ..errors import ExportError, MissingDependency
from ..errors import first_line
from ..loading import SAFETENSORS_FORMAT, LoadedRun, safetensors_digest
from ..modes import get_mode

ONNX_OPSET = 18
# Rows of the example batch for tracing: more than 1, so the batch dimension is not specialised.
EXAMPLE_ROWS = 16
# What each mode's served output is, for a reader of the file's metadata.


def _example() -> torch.Tensor:
    """(EXAMPLE_ROWS, 2) coordinates to trace with (fixed: exporting leaves the random generators alone)."""
    return torch.arange(2 * EXAMPLE_ROWS, dtype=torch.float32).reshape(EXAMPLE_ROWS, 2)


class ServedModel(nn.Module):
    """A fitted model and its output head (`Mode.display`): (N, 2) coordinates -> displayable values.

    Binary: P(background), served as (N,). Gray / rgb: the outputs clamped to [0, 1], (N, C).
    A mode whose head reduces several outputs to one value (a class probability) serves it
    as (N,), as exported files always have; one that shows its outputs keeps (N, C).
    """

    def __init__(self, model: nn.Module, mode: str) -> None:
        super().__init__()
        self.model = model
        self.head = get_mode(mode)
        self.flat = self.head.out_channels != self.head.picture_channels

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        values = self.head.display(self.model(yx))
        return values[:, 0] if self.flat else values


def exportable_model(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode, on its own, with no parameter asking for gradients."""
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def served_model(loaded: LoadedRun) -> ServedModel:
    """The network as every format carries it, on the CPU, in eval mode."""
    return ServedModel(exportable_model(loaded.model).cpu(), loaded.mode).eval()


@contextlib.contextmanager
def quiet_exporters() -> Iterator[None]:
    """Silence the exporters' progress prints, warnings and log lines; errors still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._export", "onnxscript", "onnx_ir")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def picture_name(path: str) -> str:
    """A picture's file name alone (either slash): exported files travel, the folders of the machine that trained them do not."""
    return PurePath(path.replace("\\", "/")).name or "picture"


def exported_config(cfg: RunConfig) -> str:
    """The config's JSON as exported files carry it: a picture named by its file name, never by a path on this machine."""
    if cfg.data.image is None:
        return cfg.to_json()
    return dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image=picture_name(cfg.data.image))).to_json()


def metadata(loaded: LoadedRun) -> dict[str, str]:
    """What a reader of an exported file needs besides the graph: config, picture size, output."""
    mode = loaded.mode
    return {
        "overfit_config": exported_config(loaded.config),
        "height": str(loaded.height),
        "width": str(loaded.width),
        "step": str(loaded.step),
        "mode": mode,
        "input": "yx: (N, 2) float32 pixel coordinates (y up from the bottom row's centre, x right from the left column's centre)",
        "output": get_mode(mode).output_description,
    }


# -- pt2 -------------------------------------------------------------------------------

def export_pt2(loaded: LoadedRun, title: str = "") -> bytes:
    """A `torch.export` program (dynamic batch) as bytes; the config rides along in extra files."""
    try:
        with quiet_exporters():
            program = torch.export.export(served_model(loaded), (_example(),), dynamic_shapes={"yx": {0: torch.export.Dim("batch")}})
        buf = io.BytesIO()
        extra = {"overfit/" + k: v for k, v in metadata(loaded).items()}
        torch.export.save(program, buf, extra_files=extra)
    except Exception as e:  # torch.export raises many types for an untraceable model
        raise ExportError(f"torch.export cannot express this model as pt2: {first_line(e)}", field="format") from None
    return buf.getvalue()


# -- onnx ------------------------------------------------------------------------------

def onnx_proto(module: nn.Module, props: dict[str, str] | None = None, field: str = "format") -> Any:
    """The ONNX ModelProto of `module` through the torch.export-based exporter (opset 18), dynamic batch.

    `field` is the parameter an error blames: "format" for an export, "backend" for onnxruntime.
    """
    try:
        with quiet_exporters():  # importing them warns about torch.jit deprecations
            import onnx
            import onnxscript  # noqa: F401  the exporter needs it
    except ImportError as e:
        raise MissingDependency("ONNX conversion", e.name or "onnx", "export", field=field) from None

    try:
        with quiet_exporters():
            program = torch.onnx.export(
                module, (_example(),), dynamo=True, opset_version=ONNX_OPSET, input_names=["yx"], output_names=["values"],
                dynamic_shapes={"yx": {0: torch.export.Dim("batch")}}, verbose=False, report=False, optimize=True,
            )
            proto = program.model_proto
    except Exception as e:
        raise ExportError(f"the ONNX exporter cannot express this model: {first_line(e)}", field=field) from None
    if props:
        onnx.helper.set_model_props(proto, props)
    return proto


def export_onnx(loaded: LoadedRun, title: str = "") -> bytes:
    """The ONNX model (opset 18, input `yx` (N, 2), output `values`) as bytes; the config in its metadata."""
    proto = onnx_proto(served_model(loaded), metadata(loaded))
    proto.producer_name = "overfit"
    return proto.SerializeToString()


# -- safetensors -----------------------------------------------------------------------

def export_safetensors(loaded: LoadedRun, title: str = "") -> bytes:
    """The model's state dict as safetensors, with the config, picture size, step and a sha256 in the metadata."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in loaded.model.state_dict().items()}
    meta = {"format": SAFETENSORS_FORMAT, "overfit_config": exported_config(loaded.config),
            "height": str(loaded.height), "width": str(loaded.width), "step": str(loaded.step)}
    meta["sha256"] = safetensors_digest(tensors, meta)
    return save(tensors, metadata=meta)
