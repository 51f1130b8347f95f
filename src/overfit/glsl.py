"""GLSL text shared by the registries' shader forms and the WebGL export (no torch, no numpy)."""

from __future__ import annotations

import math
import struct


def glsl_float(x: float) -> str:
    """A value, rounded to float32 as the GPU holds it, as a GLSL literal that reads back exactly."""
    x = struct.unpack("f", struct.pack("f", float(x)))[0]
    if not math.isfinite(x):
        raise ValueError(f"{x} has no GLSL literal")
    s = f"{x:.9g}"
    return s if any(c in s for c in ".eE") else s + ".0"
