"""The html format: a WebGL2 fragment shader generated from the weights, inside one self-contained viewer page.

The shader evaluates the whole network at every canvas pixel: the input scaling, the
encoding, each Linear (eval-mode BatchNorm folded in) and its activation, and the
mode's output head. It asks the registries rather than knowing the kinds: each
activation's GLSL is `ACTIVATIONS[name].glsl`, and each encoding's GLSL is the `glsl`
function beside its module in `encodings/`, which lays its constants out through the
`Packer` it is given. Adding an activation or an encoding needs no change here.
"""

from __future__ import annotations

import base64
import html
import importlib
import json
import math
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
from torch import nn

from .. import encodings
from ..activations import ACTIVATIONS
from ..config import RunConfig
from ..errors import ExportError
from ..glsl import glsl_float as _glsl_float
from ..loading import LoadedRun
from ..modes import get_mode
from ..models import ActivationLayer
from .formats import picture_name

WEIGHT_TEX_WIDTH = 1024  # texels (4 floats each) per row of the weight texture; the shader hard-codes it
TABLE_TEX_WIDTH = 2048  # texels per row of an encoding's feature table
# Widest layer or encoding the shader keeps in registers (vec4 arrays per fragment).
MAX_HTML_FEATURES = 1024
TABLE_FORMATS = {1: "R32F", 2: "RG32F", 3: "RGB32F", 4: "RGBA32F"}
# The GLSL of each mode's output head (`Mode.display`) on the last layer's vec4s `o`, setting `color`.


def _refuse(detail: str) -> ExportError:
    return ExportError(f"{detail}; export onnx or pt2 instead", field="format")


def glsl_float(x: float) -> str:
    """A float32 value as a GLSL literal that reads back exactly; a non-finite one cannot be drawn."""
    try:
        return _glsl_float(x)
    except ValueError:
        raise ExportError(f"the model holds a non-finite value ({x}); the html shader cannot express it", field="format") from None


def vec4s(n: int) -> int:
    """vec4s (texels) that hold n floats."""
    return -(-n // 4)


def texture(name: str, width: int, height: int, fmt: str, data: np.ndarray) -> dict[str, Any]:
    """A float texture as the viewer uploads it: its uniform, size, format and little-endian float32 data in base64."""
    raw = np.ascontiguousarray(data, dtype="<f4").tobytes()
    return {"uniform": name, "width": width, "height": height, "format": fmt, "data": base64.b64encode(raw).decode("ascii")}


@dataclass
class Packer:
    """What an encoding's `glsl(module, packer)` writes its constants through.

    `add` lays float32 data in the RGBA weight texture `u_w` (each piece on a texel
    boundary; the shader reads it with `wt(texel)`); `table` makes the feature table
    texture `u_table` (read with `tab(texel)`); `literal` writes a float as GLSL and
    `vec4s` counts the vec4s that hold n floats.
    """

    chunks: list[np.ndarray] = field(default_factory=list)
    texels: int = 0

    literal = staticmethod(glsl_float)
    vec4s = staticmethod(vec4s)

    def add(self, values: np.ndarray) -> int:
        """Append `values` (any shape, flattened row-major) to the weight texture; the texel it starts at."""
        flat = np.asarray(values, dtype=np.float32).reshape(-1)
        n = vec4s(flat.size)
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
        return texture(name, width, rows, "RGBA32F", data)

    @staticmethod
    def table(rows: np.ndarray) -> tuple[dict[str, Any], int]:
        """The `u_table` texture of a feature table (n, F), and the texels per row: row r's vec4 t is tab(r * per_row + t).

        F <= 4 features fit one texel of F channels; more take ceil(F / 4) RGBA texels.
        """
        F = rows.shape[1]
        comps = min(F, 4)  # texture channels
        per_row = vec4s(F) if F > 4 else 1
        if F > 4:
            padded = np.zeros((rows.shape[0], 4 * per_row), dtype=np.float32)
            padded[:, :F] = rows
            rows = padded
        texels = rows.shape[0] * per_row
        height = max(1, -(-texels // TABLE_TEX_WIDTH))
        data = np.zeros(height * TABLE_TEX_WIDTH * comps, dtype=np.float32)
        data[:rows.size] = rows.reshape(-1)
        return texture("u_table", TABLE_TEX_WIDTH, height, TABLE_FORMATS[comps], data), per_row


def _activation_glsl(layer: ActivationLayer, s: str) -> str:
    """The GLSL expression of an activation layer applied to the vec4 expression `s`, from the registry."""
    if layer.name not in ACTIVATIONS:
        raise _refuse(f"the activation {layer.name} has no shader form")
    return ACTIVATIONS[layer.name].glsl(s, layer.w0)


def _mlp_layers(mlp: nn.Sequential) -> list[tuple[np.ndarray, np.ndarray, ActivationLayer | None]]:
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
                raise ExportError("BatchNorm without running statistics cannot be folded into the html shader", field="format")
            gamma = m.weight.detach().double().cpu().numpy() if m.weight is not None else 1.0
            beta = m.bias.detach().double().cpu().numpy() if m.bias is not None else 0.0
            k = gamma / np.sqrt(m.running_var.detach().double().cpu().numpy() + m.eps)
            w, b, _ = layers[-1]
            layers[-1][0] = w * k[:, None]
            layers[-1][1] = (b - m.running_mean.detach().double().cpu().numpy()) * k + beta
        elif isinstance(m, ActivationLayer) and layers and layers[-1][2] is None:
            _activation_glsl(m, "s")  # refuses an activation without a shader form
            layers[-1][2] = m
        else:
            raise ExportError(f"the layer {type(m).__name__} in this position has no html shader form", field="format")
    if not layers or layers[-1][2] is not None:
        raise ExportError("the html shader needs a network that ends with a Linear layer", field="format")
    return [(w, b, act) for w, b, act in layers]


def _encoding_glsl(kind: str, module: nn.Module, packer: Packer) -> tuple[list[str], int, np.ndarray, dict[str, Any] | None, int]:
    """The registered encoding's `glsl(module, packer)`: code that fills a[] from the scaled coordinates v,
    vec4s used, the position in a[] of each encoding output (for the first layer's columns), its table
    texture or None, and its MACs per pixel."""
    entry = encodings.ENCODINGS.get(kind)
    implementation = importlib.import_module(f"{encodings.__name__}.{entry.module}") if entry else None
    if implementation is None or not hasattr(implementation, "glsl"):
        raise _refuse(f"the encoding {kind} has no shader form")
    return implementation.glsl(module, packer)


def build_shader(loaded: LoadedRun) -> tuple[str, list[dict[str, Any]], int]:
    """The fragment shader that evaluates the run's network at each pixel, its textures and MACs per pixel.

    The canvas pixel at gl_FragCoord maps to (y, x) = u_origin + gl_FragCoord.yx * u_step
    (the canvas's y axis points up, like the run's). Activations live in vec4 arrays;
    each Linear reads four weights per texel fetch.
    """
    model = loaded.model
    mode = get_mode(loaded.mode)
    packer = Packer()
    scale = model.scaling.scale.detach().float().cpu().numpy()
    offset = model.scaling.offset.detach().float().cpu().numpy()
    enc_code, enc4, columns, table, macs = _encoding_glsl(loaded.config.encoding.kind, model.encoding, packer)
    layers = _mlp_layers(model.mlp)
    widths = [4 * enc4] + [w.shape[0] for w, _, _ in layers]
    if max(widths) > MAX_HTML_FEATURES:
        raise _refuse(f"a layer or encoding of {max(widths)} features is wider than the viewer's limit of {MAX_HTML_FEATURES}")
    n4 = max(vec4s(w) for w in widths)

    body: list[str] = [f"vec4 a[{n4}];", f"vec4 b[{n4}];"]  # activations, ping-ponged between layers
    body += enc_code
    src, dst, in4 = "a", "b", enc4
    for k, (w, bias, act) in enumerate(layers):
        out, fan_in = w.shape
        out4 = vec4s(out)
        # Rows padded to out4 * 4, columns to in4 * 4; the first layer's columns go where the encoding put each feature.
        padded = np.zeros((4 * out4, 4 * in4), dtype=np.float64)
        cols = columns if k == 0 else np.arange(fan_in)
        padded[:out, cols] = w
        w_off = packer.add(padded)
        b_off = packer.add(np.pad(bias, (0, 4 * out4 - out)))
        expr = "s" if act is None else _activation_glsl(act, "s")
        body += [f"// Linear {fan_in} -> {out}" + ("" if act is None else f", {act.name}"),
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
    body += [line.format(o=src) for line in mode.display_glsl]

    weights = packer.texture("u_w", WEIGHT_TEX_WIDTH)
    glsl = SHADER_HEAD + (TABLE_HEAD if table else "") + "\n".join([
        "void main() {",
        "  vec2 yx = u_origin + gl_FragCoord.yx * u_step;  // (y, x) in the run's pixel units",
        f"  vec2 v = yx * vec2({glsl_float(scale[0])}, {glsl_float(scale[1])}) + vec2({glsl_float(offset[0])}, {glsl_float(offset[1])});",
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
    """One line about the network for the viewer's caption."""
    m = cfg.model
    summary = encodings.ENCODINGS[cfg.encoding.kind].summary(cfg.encoding)
    enc = f", {summary}" if summary else ""
    net = f"MLP {'-'.join(str(w) for w in m.hidden)} {m.activation}" + (" + BatchNorm" if m.batchnorm else "")
    return f"{cfg.preset}: {net}{enc}, {cfg.data.mode}"


def export_html(loaded: LoadedRun, title: str = "") -> str:
    """One self-contained HTML page that renders the network with WebGL2 and zooms and pans it."""
    glsl, textures, macs = build_shader(loaded)
    cfg = loaded.config
    # The page is meant to be shared: name a picture file by its name alone, never by a path on this machine.
    source = picture_name(cfg.data.image) if cfg.data.image is not None else cfg.data.text
    meta = {
        "title": title or cfg.preset, "height": loaded.height, "width": loaded.width, "mode": loaded.mode,
        "step": loaded.step, "description": _describe(cfg), "source": source,
    }
    payload = json.dumps({"meta": meta, "shader": glsl, "textures": textures, "macs": macs}, separators=(",", ":"))
    template = resources.files(__package__).joinpath("viewer.html").read_text(encoding="utf-8")
    page_title = html.escape(f"overfit · {meta['title']}")
    # "</" inside the JSON would end the script element early.
    return template.replace("__OVERFIT_TITLE__", page_title).replace("__OVERFIT_MODEL__", payload.replace("</", "<\\/"))
