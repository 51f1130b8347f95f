"""Exporting a fitted run to a file, to serve it anywhere: `export_run(run_dir, fmt, out_path)`.

`FORMATS` names each format with its file extension and its writer:

- `pt2`: a `torch.export` program, dynamic batch dimension (`formats`);
- `onnx`: the same graph through the torch.export-based ONNX exporter, opset 18 (`formats`);
- `safetensors`: the weights, the run's JSON config and the picture size, with a
  sha256 over all of it, so a corrupted or edited file is refused on loading (`formats`);
- `html`: one self-contained page that evaluates the network on the GPU (a WebGL2
  fragment shader generated from the weights) and lets you zoom and pan the
  continuous picture (`webgl`).

Every format takes what the model takes, (N, 2) float32 raw pixel coordinates (y, x)
in the run's convention (`coords`: y up, pixel centres at integers), with the input
scaling and the encoding inside, and gives what the mode's output head (`Mode.display`)
gives: P(background) (N,) for binary runs, pixel values clamped to [0, 1] (N, C) for
gray and rgb runs. Loading an export back is `loading.load`; evaluating a network fast
is `inference`. Errors are `ExportError`s whose `field` names the parameter at fault
(`format`, `output`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ExportError
from ..files import write_atomic
from ..loading import LoadedRun, load_run_model
from ..runs import CHECKPOINT, RunFolder, check_new_output
from .formats import ServedModel, export_onnx, export_pt2, export_safetensors, served_model
from .webgl import build_shader, export_html

EXPORT_DIR = "export"

__all__ = ["EXPORT_DIR", "FORMATS", "ExportError", "ExportFormat", "ServedModel", "build_shader", "default_output",
           "export_html", "export_onnx", "export_pt2", "export_run", "export_safetensors", "served_model"]


@dataclass(frozen=True)
class ExportFormat:
    """A registry entry: the file extension and the writer, `write(loaded, title) -> bytes or str`."""

    extension: str
    write: Callable[[LoadedRun, str], bytes | str]


FORMATS: dict[str, ExportFormat] = {
    "pt2": ExportFormat("pt2", export_pt2),
    "onnx": ExportFormat("onnx", export_onnx),
    "safetensors": ExportFormat("safetensors", export_safetensors),
    "html": ExportFormat("html", export_html),
}


def default_output(run_dir: str | os.PathLike, fmt: str) -> Path:
    """Where an export goes by default: RUN/export/model.EXT."""
    return Path(run_dir) / EXPORT_DIR / f"model.{FORMATS[fmt].extension}"


def export_run(run_dir: str | os.PathLike, fmt: str, out_path: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Export the fitted model of a run folder in format `fmt` to `out_path` (default RUN/export/model.EXT); the path written.

    An existing file is replaced only with `force`, and never a run folder's own file.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}", field="format")
    folder = RunFolder.open(run_dir)
    if not folder.has_checkpoint():
        raise ExportError(f"run folder {folder.path} has no {CHECKPOINT} yet: nothing to export")
    path = Path(out_path) if out_path is not None else default_output(folder.path, fmt)
    check_new_output(path, "." + FORMATS[fmt].extension, force, ExportError)
    if out_path is not None:
        _check_writable(path)  # before any work is done
    loaded = load_run_model(folder.path)
    if out_path is None:
        try:
            path.parent.mkdir(exist_ok=True)
        except OSError as e:
            raise ExportError(f"cannot create {path.parent}: {e.strerror or e}", field="output") from None
        _check_writable(path)

    data = FORMATS[fmt].write(loaded, folder.path.name)
    try:
        write_atomic(path, data)
    except OSError as e:
        raise ExportError(f"cannot write {path}: {e.strerror or e}", field="output") from None
    return path


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be written (`field` "output"); `check_new_output` has refused folders."""
    parent = path.parent
    if not parent.is_dir():
        raise ExportError(f"cannot write {path}: folder {parent} does not exist", field="output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"cannot write {path}: folder {parent} is not writable", field="output")
