"""What the page sends: JSON bodies, the run config they ask for, and the target a new run would fit.

A config from the browser is validated exactly as the command line validates one
(`RunConfig.from_dict`: unknown keys and wrong types are refused, naming the key),
plus the lab's own rules: a picture comes only as an upload id (the browser never
names a server path), and a text canvas stays under the lab's pixel cap.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from fastapi import Request

from .. import configio
from ..config import RunConfig
from ..errors import ConfigError, OverfitError
from ..limits import LIMITS, most
from ..modes import get_mode
from .errors import LabError, lab_error
from .uploads import UploadStore

# A JSON body larger than this is not a config (`limits`).
MAX_JSON_BYTES = most("request_bytes")
# Keys a request to make a run may have.
RUN_REQUEST_KEYS = ("config", "upload", "name")
# Longest side of an uploaded picture's preview before any run exists.
TARGET_PREVIEW_SIDE = 1024


# The lab's hard cap on what its runs training at the same time may take together: the form is one click from a
# model that fills the machine, and the lab shares it with the browser. Below it, the usual budget (half the
# available memory when the lab starts).
LAB_MAX_MEMORY = 4 * 10**9


def lab_memory_budget() -> int:
    """Bytes the lab's runs may take together by `budget.estimate`: the smaller of LAB_MAX_MEMORY and the usual budget."""
    from ..budget import default_budget

    return min(LAB_MAX_MEMORY, default_budget())


async def read_body(request: Request, limit: int = MAX_JSON_BYTES) -> bytes:
    """The request's body, read only up to `limit` bytes: LabError 413 (field "body") as soon as it is longer."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:  # refused before a byte is read
        raise _too_long(int(declared), limit)
    parts, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:  # stop reading here: an endless body costs at most one chunk more than the limit
            raise _too_long(size, limit)
        parts.append(chunk)
    return b"".join(parts)


def _too_long(size: int, limit: int) -> LabError:
    body = LIMITS["request_bytes"]
    return LabError(413, f"{size:,} or more {body.unit}: more than the limit of {limit:,} ({body.why})", field=body.field)


async def json_body(request: Request, limit: int = MAX_JSON_BYTES) -> dict[str, Any]:
    raw = await read_body(request, limit)
    try:  # configio's parser: absurd nesting or numbers are a ConfigError, not a RecursionError or ValueError
        body = configio.loads(raw.decode("utf-8") if raw else "{}")
    except UnicodeDecodeError as e:
        raise LabError(422, f"not valid JSON: {e}", field="body") from None
    except ConfigError as e:
        raise LabError(422, f"not valid JSON: {e}", field="body") from None
    if not isinstance(body, dict):
        raise LabError(422, "expected a JSON object like {\"config\": {...}}", field="body")
    return body


def lab_config(body: dict[str, Any], uploads: UploadStore) -> tuple[RunConfig, str | None]:
    """The RunConfig a request asks for, validated as the CLI validates it, plus the lab's own rules; and the run's name."""
    unknown = sorted(set(body) - set(RUN_REQUEST_KEYS))
    if unknown:
        raise LabError(422, f"unknown request key (known: {', '.join(RUN_REQUEST_KEYS)})", field=unknown[0])
    try:
        cfg = RunConfig.from_dict(body.get("config", {}))
    except OverfitError as e:
        raise lab_error(e) from None
    if cfg.data.image is not None:
        raise LabError(422, "the lab takes pictures by upload only; send the upload's id as \"upload\"", field="data.image")
    upload = body.get("upload")
    if upload is not None:
        path = uploads.path(upload)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image=str(path)))
    elif cfg.data.width * cfg.data.height > uploads.max_pixels:
        raise LabError(422, f"{cfg.data.width} x {cfg.data.height} is larger than the lab's limit of {uploads.max_pixels:,} pixels",
                       field="data.width")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise LabError(422, f"expected a string, got {name!r}", field="name")
    return cfg, name or None


def target_picture(cfg: RunConfig) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) of the picture `cfg.data` names (text, or an already checked upload)."""
    from PIL import Image

    from ..targets import render_text

    data = cfg.data
    if data.image is None:
        try:
            return render_text(data.text, data.width, data.height, data.font_size)
        except OverfitError as e:
            raise lab_error(e) from None
    with Image.open(data.image) as img:  # checked when it was uploaded
        img.thumbnail((TARGET_PREVIEW_SIDE, TARGET_PREVIEW_SIDE))
        return np.asarray(img.convert("RGB" if get_mode(data.mode).color else "L"))
