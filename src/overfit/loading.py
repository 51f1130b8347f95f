"""Loading a fitted model: from a run folder's checkpoint or from a `.safetensors` export.

Either way the result is a `LoadedRun`: the model in eval mode with its config, the
picture size it was fitted to and the step it reached. Nothing is unpickled: a
checkpoint is read tensors-only (`runs.RunFolder.checkpoint`), and a safetensors
export is rebuilt from the JSON config it carries after its sha256 is checked.

The safetensors layout (format tag, hashed metadata, digest) is defined here, where
it is verified; `export.formats` writes it. The checksum catches a damaged or edited
file, not a forged one (anyone can recompute it), so the config a file carries is
validated like any other (`RunConfig`, then the memory its model needs, `budget`)
before a model is built from it. Nothing here renders or exports.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from . import budget
from .config import RunConfig
from .errors import ConfigError, ExportError, MemoryBudgetError, RunFolderError, first_line
from .models import model_for
from .runs import RunFolder

SAFETENSORS_FORMAT = "overfit-safetensors-1"
# Metadata keys covered by the checksum, besides the tensors.
HASHED_METADATA = ("format", "overfit_config", "height", "width", "step")


@dataclass
class LoadedRun:
    """A fitted model ready to evaluate, with what is needed to interpret its output."""

    model: nn.Module
    config: RunConfig
    height: int
    width: int
    step: int

    @property
    def mode(self) -> str:
        """The run's data.mode (see `modes`): what its outputs mean."""
        return self.config.data.mode




def load_run_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """The model of a run folder from its checkpoint (no pickle: tensors only), in eval mode."""
    folder = RunFolder.open(path)
    state = folder.checkpoint(resume=False)
    try:
        cfg = RunConfig.from_json(state["config"])
    except ConfigError as e:
        raise RunFolderError(f"checkpoint of {folder.path} holds an invalid config: {e}") from None
    target = folder.target()
    try:
        budget.check(cfg, None, (target.height, target.width), training=False)
    except MemoryBudgetError as e:
        raise RunFolderError(f"{folder.path}: {e.words(advice=False)}") from None
    model = model_for(cfg, target.height, target.width)
    model.load_state_dict(state["model"])
    model.eval().to(device)
    return LoadedRun(model, cfg, target.height, target.width, int(state["step"]))


def safetensors_digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """sha256 over the hashed metadata and every tensor's name, dtype, shape and bytes."""
    h = hashlib.sha256()
    h.update(json.dumps({k: metadata.get(k) for k in HASHED_METADATA}, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def load_safetensors(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """A model exported as safetensors, rebuilt from its config, in eval mode; no pickle involved.

    A file that is not safetensors, not an overfit export, or whose checksum does not
    match its contents (corrupted or edited) is refused with an `ExportError`.
    """
    from safetensors import safe_open

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error type, and OSError, for a damaged file
        raise ExportError(f"{p} is not a readable safetensors file: {first_line(e)}") from None
    if metadata.get("format") != SAFETENSORS_FORMAT:
        raise ExportError(f"{p} is not an overfit safetensors export (no {SAFETENSORS_FORMAT!r} format tag)")
    try:
        digest = safetensors_digest(tensors, metadata)
    except (RuntimeError, TypeError) as e:
        raise ExportError(f"{p} is not a readable overfit export: {first_line(e)}") from None
    if metadata.get("sha256") != digest:
        raise ExportError(f"{p} is corrupted or was modified: its checksum does not match its contents")
    try:
        cfg = RunConfig.from_json(metadata["overfit_config"])
        height, width, step = int(metadata["height"]), int(metadata["width"]), int(metadata["step"])
    except (ConfigError, KeyError, ValueError) as e:
        raise ExportError(f"{p}: bad metadata: {e}") from None
    if not (2 <= height and 2 <= width and height * width <= cfg.data.max_pixels and step >= 0):
        raise ExportError(f"{p}: bad metadata: a {width} x {height} picture at step {step} does not fit its config "
                          f"(at least 2 x 2, at most data.max_pixels = {cfg.data.max_pixels:,} pixels)")
    try:
        budget.check(cfg, None, (height, width), training=False)  # before a model of that size is built
    except MemoryBudgetError as e:
        raise ExportError(f"{p}: {e.words(advice=False)}") from None
    model = model_for(cfg, height, width)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{p}: the weights do not fit the config's model: {first_line(e)}") from None
    model.eval().to(device)
    return LoadedRun(model, cfg, height, width, step)


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """A fitted model from a run folder or a `.safetensors` export (what `overfit render` accepts)."""
    p = Path(path)
    if p.is_file() and p.suffix == ".safetensors":
        return load_safetensors(p, device)
    return load_run_model(p, device)
