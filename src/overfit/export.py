"""Serving a fitted run: export it to a file, load it back, and evaluate it fast.

`overfit export RUN --format F` writes one of:

- `pt2`: a `torch.export` program, dynamic batch dimension;
- `onnx`: the same graph through the torch.export-based ONNX exporter (opset 18);
- `safetensors`: the weights, the run's JSON config and the picture size, with a
  sha256 over all of it, so a corrupted or edited file is refused on loading;
- `html`: one self-contained page that evaluates the network on the GPU (a WebGL2
  fragment shader generated from the weights) and lets you zoom and pan the
  continuous picture.

Every format takes what the model takes, (N, 2) float32 raw pixel coordinates (y, x)
in the run's convention (`coords`: y up, pixel centres at integers), with the input
scaling and the encoding inside, and gives what `render.outputs_to_values` gives:
P(background) (N,) for binary runs, pixel values clamped to [0, 1] (N, C) for gray
and rgb runs.

`inference_backend` gives the same network as a callable for `render.predict`,
evaluated eagerly, through `torch.compile`, or with onnxruntime.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import html
import io
import json
import logging
import math
import os
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .activations import Cos, Gauss, Sin, Sine
from .config import ConfigError, RunConfig
from .encodings import HASH_PRIMES, FourierFeatures, GridEncoding, Identity, PositionalEncoding
from .errors import OverfitError
from .render import RENDER_CHUNK, LoadedRun, load_run_model

# format -> file extension
FORMATS = {"pt2": "pt2", "onnx": "onnx", "safetensors": "safetensors", "html": "html"}
BACKENDS = ("torch", "compiled", "onnxruntime")
EXPORT_DIR = "export"
ONNX_OPSET = 18
SAFETENSORS_FORMAT = "overfit-safetensors-1"
# Rows of the example batch for tracing: more than 1, so the batch dimension is not specialised.
EXAMPLE_ROWS = 16


def _example() -> torch.Tensor:
    """(EXAMPLE_ROWS, 2) coordinates to trace with (fixed: exporting leaves the random generators alone)."""
    return torch.arange(2 * EXAMPLE_ROWS, dtype=torch.float32).reshape(EXAMPLE_ROWS, 2)


class ExportError(OverfitError, ValueError):
    """An export, a load of an exported file or a backend that cannot be done; the message says why."""


# -- the exported network ----------------------------------------------------------

class ServedModel(nn.Module):
    """A fitted model and its output head: (N, 2) coordinates -> displayable values.

    Binary: softmax(logits)[:, 1] = P(background), (N,). Gray / rgb: the outputs
    clamped to [0, 1], (N, C). The same as `render.outputs_to_values(model(yx))`.
    """

    def __init__(self, model: nn.Module, mode: str) -> None:
        super().__init__()
        self.model = model
        self.binary = mode == "binary"

    def forward(self, yx: torch.Tensor) -> torch.Tensor:
        out = self.model(yx)
        if self.binary:
            return torch.softmax(out, dim=1)[:, 1]
        return out.clamp(0.0, 1.0)


def exportable_model(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode, on its own, with no parameter asking for gradients."""
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def served_model(loaded: LoadedRun) -> ServedModel:
    """The network as every format carries it, on the CPU, in eval mode."""
    return ServedModel(exportable_model(loaded.model).cpu(), loaded.mode).eval()


# -- export_run: the command's entry point ------------------------------------------

def default_output(run_dir: str | os.PathLike, fmt: str) -> Path:
    """Where an export goes by default: RUN/export/model.EXT."""
    return Path(run_dir) / EXPORT_DIR / f"model.{FORMATS[fmt]}"


def export_run(run_dir: str | os.PathLike, fmt: str, out_path: str | os.PathLike | None = None) -> Path:
    """Export the fitted model of a run folder in format `fmt` to `out_path` (default RUN/export/model.EXT)."""
    from .runs import CHECKPOINT, RunFolder, write_atomic

    if fmt not in FORMATS:
        raise ExportError(f"--format: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    folder = RunFolder.open(run_dir)
    if not (folder.path / CHECKPOINT).is_file():
        raise ExportError(f"run folder {folder.path} has no {CHECKPOINT} yet: nothing to export")
    option = "-o" if out_path is not None else "output"
    path = Path(out_path) if out_path is not None else default_output(folder.path, fmt)
    if out_path is not None:
        _check_writable(path, option)  # before any work is done
    loaded = load_run_model(folder.path)
    if out_path is None:
        try:
            path.parent.mkdir(exist_ok=True)
        except OSError as e:
            raise ExportError(f"output: cannot create {path.parent}: {e.strerror or e}") from None
        _check_writable(path, option)

    data = EXPORTERS[fmt](loaded, title=folder.path.name)
    try:
        write_atomic(path, data)
    except OSError as e:
        raise ExportError(f"{option}: cannot write {path}: {e.strerror or e}") from None
    return path


def _check_writable(path: Path, option: str) -> None:
    """Refuse an output path that cannot be written."""
    if path.is_dir():
        raise ExportError(f"{option}: {path} is a folder; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise ExportError(f"{option}: cannot write {path}: folder {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ExportError(f"{option}: cannot write {path}: folder {parent} is not writable")


@contextlib.contextmanager
def _quiet_exporters():
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


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _metadata(loaded: LoadedRun) -> dict[str, str]:
    """What a reader of an exported file needs besides the graph: config, picture size, output."""
    return {
        "overfit_config": loaded.config.to_json(),
        "height": str(loaded.height),
        "width": str(loaded.width),
        "step": str(loaded.step),
        "mode": loaded.mode,
        "input": "yx: (N, 2) float32 pixel coordinates (y up from the bottom row's centre, x right from the left column's centre)",
        "output": ("P(background) (N,)" if loaded.mode == "binary" else f"{loaded.mode} values (N, {loaded.config.out_channels}) clamped to [0, 1]"),
    }


# -- pt2 -------------------------------------------------------------------------------

def _torch_export(module: nn.Module) -> torch.export.ExportedProgram:
    example = _example()
    batch = torch.export.Dim("batch")
    with _quiet_exporters():
        return torch.export.export(module, (example,), dynamic_shapes={"yx": {0: batch}})


def export_pt2(loaded: LoadedRun, title: str = "") -> bytes:
    """A `torch.export` program (dynamic batch) as bytes; the config rides along in extra files."""
    try:
        program = _torch_export(served_model(loaded))
        buf = io.BytesIO()
        extra = {"overfit/" + k: v for k, v in _metadata(loaded).items()}
        torch.export.save(program, buf, extra_files=extra)
    except Exception as e:  # torch.export raises many types for an untraceable model
        raise ExportError(f"--format pt2: torch.export cannot express this model: {_first_line(e)}") from None
    return buf.getvalue()


# -- onnx ------------------------------------------------------------------------------

def _onnx_proto(module: nn.Module, metadata: dict[str, str] | None = None) -> Any:
    """The ONNX ModelProto of `module` through the torch.export-based exporter, dynamic batch."""
    try:
        with _quiet_exporters():  # importing them warns about torch.jit deprecations
            import onnx
            import onnxscript  # noqa: F401  the exporter needs it
    except ImportError as e:
        raise ExportError(f"--format onnx needs the {e.name} package: pip install 'overfit[export]'") from None

    example = _example()
    try:
        with _quiet_exporters():
            program = torch.onnx.export(
                module, (example,), dynamo=True, opset_version=ONNX_OPSET, input_names=["yx"], output_names=["values"],
                dynamic_shapes={"yx": {0: torch.export.Dim("batch")}}, verbose=False, report=False, optimize=True,
            )
            proto = program.model_proto
    except Exception as e:
        raise ExportError(f"--format onnx: the ONNX exporter cannot express this model: {_first_line(e)}") from None
    if metadata:
        onnx.helper.set_model_props(proto, metadata)
    return proto


def export_onnx(loaded: LoadedRun, title: str = "") -> bytes:
    """The ONNX model (opset 18, input `yx` (N, 2), output `values`) as bytes; the config in its metadata."""
    proto = _onnx_proto(served_model(loaded), _metadata(loaded))
    proto.producer_name = "overfit"
    return proto.SerializeToString()


# -- safetensors -----------------------------------------------------------------------

# Metadata keys covered by the checksum, besides the tensors.
_HASHED_META = ("format", "overfit_config", "height", "width", "step")


def _digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 over the hashed metadata and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps({k: metadata.get(k) for k in _HASHED_META}, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def export_safetensors(loaded: LoadedRun, title: str = "") -> bytes:
    """The model's state dict as safetensors, with the config, picture size, step and a sha256 in the metadata."""
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in loaded.model.state_dict().items()}
    metadata = {"format": SAFETENSORS_FORMAT, "overfit_config": loaded.config.to_json(),
                "height": str(loaded.height), "width": str(loaded.width), "step": str(loaded.step)}
    metadata["sha256"] = _digest(tensors, metadata)
    return save(tensors, metadata=metadata)


def load_safetensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """A model exported as safetensors, rebuilt from its config, in eval mode; no pickle involved.

    A file that is not safetensors, not an overfit export, or whose checksum does not
    match its contents (corrupted or edited) is refused with an `ExportError`.
    """
    from safetensors import safe_open

    from .models import model_for

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error type, and OSError, for a damaged file
        raise ExportError(f"{p} is not a readable safetensors file: {_first_line(e)}") from None
    if metadata.get("format") != SAFETENSORS_FORMAT:
        raise ExportError(f"{p} is not an overfit safetensors export (no {SAFETENSORS_FORMAT!r} format tag)")
    try:
        digest = _digest(tensors, metadata)
    except (RuntimeError, TypeError) as e:
        raise ExportError(f"{p} is not a readable overfit export: {_first_line(e)}") from None
    if metadata.get("sha256") != digest:
        raise ExportError(f"{p} is corrupted or was modified: its checksum does not match its contents")
    try:
        cfg = RunConfig.from_json(metadata["overfit_config"])
        height, width, step = int(metadata["height"]), int(metadata["width"]), int(metadata["step"])
    except (ConfigError, KeyError, ValueError) as e:
        raise ExportError(f"{p}: bad metadata: {e}") from None
    model = model_for(cfg, height, width)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{p}: the weights do not fit the config's model: {_first_line(e)}") from None
    model.eval().to(device)
    return LoadedRun(model, cfg, height, width, step)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """A fitted model from a run folder or a `.safetensors` export (what `overfit render` accepts)."""
    p = Path(path)
    if p.is_file() and p.suffix == ".safetensors":
        return load_safetensors(p, device)
    return load_run_model(p, device)


# -- html: the WebGL2 viewer -------------------------------------------------------------

WEIGHT_TEX_WIDTH = 1024  # texels (4 floats each) per row of the weight texture; the shader hard-codes it
TABLE_TEX_WIDTH = 2048  # texels per row of a grid's feature table
# Widest layer or encoding the shader keeps in registers (vec4 arrays per fragment).
MAX_HTML_FEATURES = 1024
TABLE_FORMATS = {1: "R32F", 2: "RG32F", 3: "RGB32F", 4: "RGBA32F"}
_XYZW = "xyzw"


def _glsl_float(x: float) -> str:
    """A float32 value as a GLSL literal that reads back exactly."""
    x = float(np.float32(x))
    if not math.isfinite(x):
        raise ExportError(f"--format html: the model holds a non-finite value ({x}); the shader cannot express it")
    s = f"{x:.9g}"
    return s if any(c in s for c in ".eE") else s + ".0"


def _ceil4(n: int) -> int:
    return -(-n // 4)


@dataclass
class _Packer:
    """Float32 data laid out in RGBA texels; each piece starts on a texel boundary."""

    chunks: list[np.ndarray] = field(default_factory=list)
    texels: int = 0

    def add(self, values: np.ndarray) -> int:
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        n = _ceil4(flat.size)
        padded = np.zeros(4 * n, dtype=np.float32)
        padded[:flat.size] = flat
        self.chunks.append(padded)
        start, self.texels = self.texels, self.texels + n
        return start

    def texture(self, name: str, width: int) -> dict[str, Any]:
        rows = max(1, -(-self.texels // width))
        data = np.zeros(rows * width * 4, dtype=np.float32)
        flat = np.concatenate(self.chunks) if self.chunks else np.zeros(0, np.float32)
        data[:flat.size] = flat
        return _texture(name, width, rows, "RGBA32F", data)


def _texture(name: str, width: int, height: int, fmt: str, data: np.ndarray) -> dict[str, Any]:
    raw = np.ascontiguousarray(data, dtype="<f4").tobytes()
    return {"uniform": name, "width": width, "height": height, "format": fmt, "data": base64.b64encode(raw).decode("ascii")}


def _activation_glsl(m: nn.Module, s: str) -> str:
    """The GLSL expression of activation module `m` applied to the vec4 expression `s`."""
    if isinstance(m, nn.ReLU):
        return f"max({s}, 0.0)"
    if isinstance(m, nn.Tanh):
        return f"tanh(clamp({s}, -10.0, 10.0))"  # tanh(10) is 1 in fp32; larger inputs overflow some GPUs' exp
    if isinstance(m, Cos):
        return f"cos(wrap({s}))"
    if isinstance(m, Sin):
        return f"sin(wrap({s}))"
    if isinstance(m, Sine):
        return f"sin(wrap({_glsl_float(m.w0)} * {s}))"
    if isinstance(m, Gauss):
        return f"gauss({_glsl_float(m.a)} * {s})"
    if isinstance(m, nn.GELU):
        return f"gelu_tanh({s})" if m.approximate == "tanh" else f"gelu({s})"
    if isinstance(m, nn.Sigmoid):
        return f"1.0 / (1.0 + exp(-{s}))"
    if isinstance(m, nn.LeakyReLU):
        return f"mix({_glsl_float(m.negative_slope)} * {s}, {s}, step(0.0, {s}))"
    if isinstance(m, nn.Identity):
        return s
    raise ExportError(f"--format html: the activation {type(m).__name__} has no shader form yet; export onnx or pt2 instead")


def _mlp_layers(mlp: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray, nn.Module | None]]:
    """(weight (out, in), bias (out,), activation or None) per Linear, eval-mode BatchNorm folded in."""
    layers: list[list[Any]] = []
    for m in mlp:
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double().cpu().numpy()
            b = m.bias.detach().double().cpu().numpy() if m.bias is not None else np.zeros(m.out_features)
            layers.append([w, b, None])
        elif isinstance(m, nn.BatchNorm1d) and layers and layers[-1][2] is None:
            # Eval-mode BatchNorm is y = (x - mean) / sqrt(var + eps) * gamma + beta: an affine map per
            # channel, folded into the Linear before it.
            if m.running_mean is None or m.running_var is None:
                raise ExportError("--format html: BatchNorm without running statistics cannot be folded into the shader")
            gamma = m.weight.detach().double().cpu().numpy() if m.weight is not None else 1.0
            beta = m.bias.detach().double().cpu().numpy() if m.bias is not None else 0.0
            k = gamma / np.sqrt(m.running_var.detach().double().cpu().numpy() + m.eps)
            w, b, _ = layers[-1]
            layers[-1][0] = w * k[:, None]
            layers[-1][1] = (b - m.running_mean.detach().double().cpu().numpy()) * k + beta
        elif layers and layers[-1][2] is None and not isinstance(m, (nn.Linear, nn.BatchNorm1d)):
            _activation_glsl(m, "s")  # refuses an activation without a shader form
            layers[-1][2] = m
        else:
            raise ExportError(f"--format html: the layer {type(m).__name__} in this position has no shader form")
    if not layers or layers[-1][2] is not None:
        raise ExportError("--format html: the network must end with a Linear layer")
    return [(w, b, act) for w, b, act in layers]


def _encoding_glsl(enc: nn.Module, packer: _Packer) -> tuple[list[str], int, np.ndarray, dict[str, Any] | None, int]:
    """GLSL that fills a[] from the scaled coordinates v, vec4s used, the position in a[] of each
    encoding output (for the first layer's columns), the grid's table texture and the MACs per pixel."""
    if isinstance(enc, Identity):
        return ["a[0] = vec4(v, 0.0, 0.0);"], 1, np.array([0, 1]), None, 0
    if isinstance(enc, FourierFeatures):
        B = enc.B.detach().float().cpu().numpy()  # (2, m)
        m = B.shape[1]
        m4 = _ceil4(m)
        rows = np.zeros((2, 4 * m4), dtype=np.float32)
        rows[:, :m] = B
        off = packer.add(rows)
        # Phases in cycles, reduced to [0, 1) before the 2 pi: exact for any zoom, where sin of a
        # large angle would lose digits on some GPUs.
        code = [f"for (int k = 0; k < {m4}; k++) {{",
                f"  vec4 t = fract(v.x * wt({off} + k) + v.y * wt({off + m4} + k));",
                "  a[k] = sin(TAU * t);",
                f"  a[{m4} + k] = cos(TAU * t);",
                "}"]
        columns = np.concatenate([np.arange(m), 4 * m4 + np.arange(m)])
        return code, 2 * m4, columns, None, 2 * m
    if isinstance(enc, PositionalEncoding):
        freqs = enc.freqs.detach().double().cpu().numpy()  # (L,) = 2^k pi
        L = freqs.size
        s4 = _ceil4(2 * L)
        code = ["a[0] = vec4(v, 0.0, 0.0);"]
        # Feature j of the sin (and cos) block: axis j // L, octave j % L (the flatten of (N, 2, L)).
        for q in range(s4):
            parts = []
            for c in range(4):
                j = 4 * q + c
                if j < 2 * L:
                    cycles = float(freqs[j % L] / (2 * math.pi))  # 2^k pi / 2 pi = 2^(k - 1)
                    parts.append(f"v.{'xy'[j // L]} * {_glsl_float(cycles)}")
                else:
                    parts.append("0.0")
            code.append(f"{{ vec4 t = fract(vec4({', '.join(parts)})); a[{1 + q}] = sin(TAU * t); a[{1 + s4 + q}] = cos(TAU * t); }}")
        columns = np.concatenate([[0, 1], 4 + np.arange(2 * L), 4 + 4 * s4 + np.arange(2 * L)])
        return code, 1 + 2 * s4, columns, None, 4 * L
    if isinstance(enc, GridEncoding):
        return _grid_glsl(enc)
    raise ExportError(f"--format html: the encoding {type(enc).__name__} has no shader form; export onnx or pt2 instead")


def _grid_tables(enc: GridEncoding) -> list[tuple[np.ndarray, bool]]:
    """Each level's feature table (rows, F) and whether it is hashed, coarsest first.

    A dense level's row for vertex (iy, ix) is iy * (cx + 1) + ix; a hashed level's is
    the spatial hash, as in `GridEncoding.gather_level`.
    """
    F = enc.features_per_level
    dense, hashed, out = iter(enc.dense), 0, []
    for is_hashed in enc.is_hashed:
        if is_hashed:
            out.append((enc.hashed[hashed].detach().float().cpu().numpy(), True))
            hashed += 1
        else:
            table = next(dense).detach()[0]  # (F, cy + 1, cx + 1)
            out.append((table.permute(1, 2, 0).reshape(-1, F).float().cpu().numpy(), False))
    return out


def _grid_glsl(enc: GridEncoding) -> tuple[list[str], int, np.ndarray, dict[str, Any], int]:
    """The grid encoding in GLSL: per level, four table rows (dense or hashed) and bilinear weights."""
    F = enc.features_per_level
    comps = min(F, 4)  # texture channels
    per_row = _ceil4(F) if F > 4 else 1  # texels per table row
    levels = _grid_tables(enc)
    offsets = np.cumsum([0] + [t.shape[0] for t, _ in levels])
    table = np.concatenate([t for t, _ in levels])  # (rows, F)
    if F > 4:
        padded = np.zeros((table.shape[0], 4 * per_row), dtype=np.float32)
        padded[:, :F] = table
        table = padded
    texels = table.shape[0] * per_row
    height = max(1, -(-texels // TABLE_TEX_WIDTH))
    data = np.zeros(height * TABLE_TEX_WIDTH * comps, dtype=np.float32)
    data[:table.size] = table.reshape(-1)
    texture = _texture("u_table", TABLE_TEX_WIDTH, height, TABLE_FORMATS[comps], data)
    mask = enc.table_size - 1

    n = enc.out_features
    n4 = _ceil4(n)
    code = [f"for (int k = 0; k < {n4}; k++) a[k] = vec4(0.0);",
            # (N, 2) in [-r, r] -> [0, 1] per axis; outside the picture clamps to its edge, as the model does.
            f"vec2 u = clamp((v / {_glsl_float(enc.input_range)} + 1.0) * 0.5, 0.0, 1.0);"]
    for level, (cy, cx) in enumerate(enc.resolutions):
        off, stride, hashed = int(offsets[level]), cx + 1, levels[level][1]
        code.append("{")
        code.append(f"  vec2 cells = vec2({_glsl_float(cy)}, {_glsl_float(cx)});")
        code.append("  vec2 pos = u * cells;")
        code.append("  vec2 lo = max(min(floor(pos), cells - 1.0), 0.0);")
        code.append("  vec2 f = pos - lo;")
        code.append("  ivec2 i = ivec2(lo);")
        if hashed:
            # instant-NGP's hash in uint32: the low T bits of the int64 product and xor are the same.
            code.append(f"  uint x0 = uint(i.y) * {HASH_PRIMES[0]}u, x1 = uint(i.y + 1) * {HASH_PRIMES[0]}u;")
            code.append(f"  uint y0 = uint(i.x) * {HASH_PRIMES[1]}u, y1 = uint(i.x + 1) * {HASH_PRIMES[1]}u;")
            code.append(f"  int r00 = {off} + int((x0 ^ y0) & {mask}u), r01 = {off} + int((x1 ^ y0) & {mask}u);")
            code.append(f"  int r10 = {off} + int((x0 ^ y1) & {mask}u), r11 = {off} + int((x1 ^ y1) & {mask}u);")
        else:
            code.append(f"  int r00 = {off} + i.x * {stride} + i.y, r01 = r00 + 1, r10 = r00 + {stride}, r11 = r10 + 1;")
        code.append("  vec4 w = vec4((1.0 - f.x) * (1.0 - f.y), (1.0 - f.x) * f.y, f.x * (1.0 - f.y), f.x * f.y);")
        for t in range(per_row):
            code.append(f"  vec4 e{t} = w.x * tab(r00 * {per_row} + {t}) + w.y * tab(r01 * {per_row} + {t})"
                        f" + w.z * tab(r10 * {per_row} + {t}) + w.w * tab(r11 * {per_row} + {t});")
        for fi in range(F):
            p = level * F + fi
            code.append(f"  a[{p // 4}].{_XYZW[p % 4]} = e{fi // 4}.{_XYZW[fi % 4]};")
        code.append("}")
    macs = enc.levels * 4 * F
    return code, n4, np.arange(n), texture, macs


def build_shader(loaded: LoadedRun) -> tuple[str, list[dict[str, Any]], int]:
    """The fragment shader that evaluates the run's network at each pixel, its textures and MACs per pixel.

    The canvas pixel at gl_FragCoord maps to (y, x) = u_origin + gl_FragCoord.yx * u_step
    (the canvas's y axis points up, like the run's). Activations live in vec4 arrays;
    each Linear reads four weights per texel fetch.
    """
    model = loaded.model
    packer = _Packer()
    scale = model.scaling.scale.detach().float().cpu().numpy()
    offset = model.scaling.offset.detach().float().cpu().numpy()
    enc_code, enc4, columns, table, macs = _encoding_glsl(model.encoding, packer)
    layers = _mlp_layers(model.mlp)
    widths = [4 * enc4] + [w.shape[0] for w, _, _ in layers]
    if max(widths) > MAX_HTML_FEATURES:
        raise ExportError(f"--format html: a layer or encoding of {max(widths)} features is wider than the viewer's "
                          f"limit of {MAX_HTML_FEATURES}; export onnx or pt2 instead")
    n4 = max(_ceil4(w) for w in widths)

    body: list[str] = [f"vec4 a[{n4}];", f"vec4 b[{n4}];"]  # activations, ping-ponged between layers
    body += enc_code
    src, dst, in4 = "a", "b", enc4
    for k, (w, bias, act) in enumerate(layers):
        out, fan_in = w.shape
        out4 = _ceil4(out)
        # Rows padded to out4 * 4, columns to in4 * 4; the first layer's columns go where the encoding put each feature.
        padded = np.zeros((4 * out4, 4 * in4), dtype=np.float64)
        cols = columns if k == 0 else np.arange(fan_in)
        padded[:out, cols] = w
        w_off = packer.add(padded)
        b_off = packer.add(np.pad(bias, (0, 4 * out4 - out)))
        expr = "s" if act is None else _activation_glsl(act, "s")
        body += [f"// Linear {fan_in} -> {out}" + ("" if act is None else f", {type(act).__name__}"),
                 f"for (int j = 0; j < {out4}; j++) {{",
                 f"  int r = {w_off} + j * {4 * in4};",
                 f"  vec4 s = wt({b_off} + j);",
                 f"  for (int i = 0; i < {in4}; i++) {{",
                 f"    vec4 x = {src}[i];",
                 f"    s += vec4(dot(wt(r + i), x), dot(wt(r + {in4} + i), x), dot(wt(r + {2 * in4} + i), x), dot(wt(r + {3 * in4} + i), x));",
                 "  }",
                 f"  {dst}[j] = {expr};",
                 "}"]
        macs += out * fan_in
        src, dst, in4 = dst, src, out4
    if loaded.mode == "binary":
        # softmax([l0, l1])[1] = 1 / (1 + exp(l0 - l1)): P(background), dark ink as in the picture.
        body += [f"float p = 1.0 / (1.0 + exp({src}[0].x - {src}[0].y));", "color = vec4(p, p, p, 1.0);"]
    elif loaded.mode == "gray":
        body += [f"float g = clamp({src}[0].x, 0.0, 1.0);", "color = vec4(g, g, g, 1.0);"]
    else:
        body += [f"color = vec4(clamp({src}[0].xyz, 0.0, 1.0), 1.0);"]

    weights = packer.texture("u_w", WEIGHT_TEX_WIDTH)
    glsl = SHADER_HEAD + (TABLE_HEAD if table else "") + "\n".join([
        "void main() {",
        "  vec2 yx = u_origin + gl_FragCoord.yx * u_step;  // (y, x) in the run's pixel units",
        f"  vec2 v = yx * vec2({_glsl_float(scale[0])}, {_glsl_float(scale[1])}) + vec2({_glsl_float(offset[0])}, {_glsl_float(offset[1])});",
        *("  " + line for line in body),
        "}",
    ]) + "\n"
    return glsl, [weights] + ([table] if table else []), macs


SHADER_HEAD = """#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
uniform sampler2D u_w;
uniform vec2 u_origin;
uniform float u_step;
out vec4 color;
const float TAU = 6.28318530718;
vec4 wt(int i) { return texelFetch(u_w, ivec2(i & 1023, i >> 10), 0); }
// x - 2 pi round(x / 2 pi): the same sine and cosine, without the large arguments some GPUs get wrong.
vec4 wrap(vec4 x) { return x - TAU * floor(x * (1.0 / TAU) + 0.5); }
vec4 gauss(vec4 x) { return exp(-x * x); }
// erf by Abramowitz and Stegun 7.1.26 (|error| < 1.5e-7); GLSL has no erf.
vec4 erf4(vec4 x) {
  vec4 t = 1.0 / (1.0 + 0.3275911 * abs(x));
  vec4 y = 1.0 - t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))) * exp(-x * x);
  return sign(x) * y;
}
vec4 gelu(vec4 x) { return 0.5 * x * (1.0 + erf4(x * 0.70710678118)); }
vec4 gelu_tanh(vec4 x) { return 0.5 * x * (1.0 + tanh(clamp(0.79788456080 * (x + 0.044715 * x * x * x), -10.0, 10.0))); }
"""

TABLE_HEAD = f"""uniform sampler2D u_table;
vec4 tab(int i) {{ return texelFetch(u_table, ivec2(i % {TABLE_TEX_WIDTH}, i / {TABLE_TEX_WIDTH}), 0); }}
"""


def _describe(cfg: RunConfig) -> str:
    m, e = cfg.model, cfg.encoding
    enc = {"none": "", "fourier": f", Fourier features {e.features} (sigma {e.sigma:g})",
           "positional": f", positional encoding L={e.frequencies}", "grid": f", grid {e.levels} levels"}.get(e.kind, f", {e.kind}")
    net = f"MLP {'-'.join(str(w) for w in m.hidden)} {m.activation}" + (" + BatchNorm" if m.batchnorm else "")
    return f"{cfg.preset}: {net}{enc}, {cfg.data.mode}"


def export_html(loaded: LoadedRun, title: str = "") -> str:
    """One self-contained HTML page that renders the network with WebGL2 and zooms and pans it."""
    glsl, textures, macs = build_shader(loaded)
    cfg = loaded.config
    source = cfg.data.image or cfg.data.text
    meta = {
        "title": title or cfg.preset, "height": loaded.height, "width": loaded.width, "mode": loaded.mode,
        "step": loaded.step, "description": _describe(cfg), "source": source,
    }
    payload = json.dumps({"meta": meta, "shader": glsl, "textures": textures, "macs": macs}, separators=(",", ":"))
    template = resources.files("overfit").joinpath("viewer.html").read_text(encoding="utf-8")
    page_title = html.escape(f"overfit · {meta['title']}")
    # "</" inside the JSON would end the script element early.
    return template.replace("__OVERFIT_TITLE__", page_title).replace("__OVERFIT_MODEL__", payload.replace("</", "<\\/"))


EXPORTERS: dict[str, Callable[..., bytes | str]] = {
    "pt2": export_pt2,
    "onnx": export_onnx,
    "safetensors": export_safetensors,
    "html": export_html,
}


# -- fast inference backends -------------------------------------------------------------

# The compiled backend runs the MLP in bfloat16 where the hardware has native bf16 and the
# values stay within this of eager fp32 on PROBE_POINTS points of the picture: one level of
# an 8-bit picture. Otherwise (sine activations, Fourier features: errors grow with the
# frequencies) it stays fp32.
BF16_TOLERANCE = 1 / 255
PROBE_POINTS = 4096


def _chunked(fn: Callable[[torch.Tensor], torch.Tensor], chunk: int, precision: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """fn applied to at most `chunk` rows at a time, so memory stays bounded for any N."""

    def run(yx: torch.Tensor) -> torch.Tensor:
        if yx.shape[0] <= chunk:
            return fn(yx)
        return torch.cat([fn(yx[i:i + chunk]) for i in range(0, yx.shape[0], chunk)])

    run.precision = precision  # type: ignore[attr-defined]
    return run


def inference_backend(loaded: LoadedRun, name: str = "torch", device: str | torch.device = "cpu",
                      chunk: int = RENDER_CHUNK, bf16: bool | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
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
        raise ExportError(f"--backend: unknown backend {name!r}; choose from {', '.join(BACKENDS)}")
    device = torch.device(device)
    if name == "onnxruntime" and device.type != "cpu":
        raise ExportError("--backend onnxruntime runs on the CPU; use --device cpu, or --backend torch or compiled on this device")
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


def native_bf16(device: torch.device) -> bool:
    """Whether `device` multiplies bfloat16 matrices in hardware (AVX512-BF16 or AMX; a bf16 GPU)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return any(getattr(torch.cpu, f, lambda: False)() for f in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return False


def _compile_fixed(model: nn.Module, device: torch.device, chunk: int) -> Callable[[torch.Tensor], torch.Tensor]:
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


def _compiled_backend(model: nn.Module, loaded: LoadedRun, device: torch.device, chunk: int,
                      bf16: bool | None) -> Callable[[torch.Tensor], torch.Tensor]:
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
        raise ExportError(f"--backend compiled: torch.compile failed ({_first_line(e)}); use --backend torch") from None


def _bf16_error(model: nn.Module, run: Callable[[torch.Tensor], torch.Tensor], loaded: LoadedRun, device: torch.device) -> float:
    """Largest difference of displayable values between `run` and eager fp32 on random points of the picture."""
    from .render import outputs_to_values

    g = torch.Generator().manual_seed(0)
    probe = (torch.rand(PROBE_POINTS, 2, generator=g) * torch.tensor([loaded.height, loaded.width]) - 0.5).to(device)
    with torch.inference_mode():
        exact = outputs_to_values(model(probe), loaded.mode)
        return float((outputs_to_values(run(probe), loaded.mode) - exact).abs().max())


def _onnxruntime_backend(model: nn.Module, chunk: int) -> Callable[[torch.Tensor], torch.Tensor]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("--backend onnxruntime needs the onnxruntime package: pip install 'overfit[export]'") from None
    proto = _onnx_proto(model.cpu())
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
        raise ExportError(f"--backend onnxruntime: onnxruntime cannot load the model: {_first_line(e)}") from None
    input_name = session.get_inputs()[0].name

    def run(yx: torch.Tensor) -> torch.Tensor:
        x = yx.detach().to("cpu", torch.float32).contiguous().numpy()
        return torch.from_numpy(session.run(None, {input_name: x})[0])

    return _chunked(run, chunk, "fp32")
