"""Loading a fitted model: from a run folder (its checkpoint or its weights stored at an evaluation) or from a `.safetensors` export.

Either way the result is a `LoadedRun`: the model in eval mode with its config, the
picture size it was fitted to and the step it reached. Nothing is unpickled: a
checkpoint is read tensors-only (`runs.RunFolder.checkpoint`), stored weights are
safetensors (`runs.RunFolder.read_weights`), and a safetensors export is rebuilt from
the JSON config it carries after its sha256 is checked.

`load_run_model` is the one way a model comes out of a run folder: render, export,
`overfit inspect` (`netview`) and the lab's network view all call it. `run_preview_batch`
is the run's own preview batch (its held-out split, its "preview" stream), the one
samples.png shows, for the lab's training-batch layer.

The safetensors layout (format tag, hashed metadata, digest) is defined here, where
it is verified; `export.formats` writes it. The checksum catches a damaged or edited
file, not a forged one (anyone can recompute it), so the config a file carries is
validated like any other (`RunConfig`, then the memory its model needs, `budget`)
before a model is built from it, and the tensors its header declares must be that
model's before any data is read (`safefiles.read_safetensors`). Nothing here renders or exports.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from . import budget
from .config import RunConfig
from .devices import resolve_device
from .errors import ConfigError, DeviceError, ExportError, MemoryBudgetError, RunFolderError, first_line
from .models import model_for
from .modes import get_mode
from .runs import RunFolder
from .safefiles import open_plain_file, read_safetensors, safetensors_header
from .sampling import holdout_split, preview_batch
from .training import derived_seeds

if TYPE_CHECKING:
    import numpy as np

    from .targets import Target

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




def nearest_step(available: list[int], step: int | None) -> int | None:
    """The last of `available` at or before `step` (the last of all for None); None if there is none."""
    if not available:
        return None
    if step is None:
        return available[-1]
    before = [s for s in available if s <= step]
    return before[-1] if before else None


def load_run_model(run: str | os.PathLike | RunFolder, device: str | torch.device = "cpu", *,
                   stored: bool = False, step: int | None = None) -> LoadedRun:
    """The model of a run folder, in eval mode: from its checkpoint, or with `stored` from its weights at an evaluation.

    Checkpoint (the default; `step` must be None): the config the checkpoint holds and the
    step it reached. `stored`: the weights the recorder kept at the last evaluation at or
    before `step` (None: the latest; `RunFolder.weight_steps`) with the run's config.json;
    a `RunFolderError` with field "step" when there is none. Either way the model's memory
    is checked against the budget (`budget.check`, not training) before it is built.
    """
    folder = run if isinstance(run, RunFolder) else RunFolder.open(run)
    height, width = folder.target_size()
    if not height:
        raise RunFolderError(f"{folder.path}: its target picture cannot be read")
    if stored:
        cfg = folder.config()
        available = folder.weight_steps()
        at = nearest_step(available, step)
        if at is None:
            raise RunFolderError(f"{folder.path} has no stored weights at or before step {step:,}" if available else
                                 f"{folder.path} has no stored weights (runs keep them at evaluations; models above a million "
                                 "parameters keep none)", field="step")
        model = _model(folder, cfg, height, width)
        # The file's header is checked against the model before its data is read: no more than the model is read.
        state = folder.read_weights(at, {name: tuple(t.shape) for name, t in model.state_dict().items()})
    else:
        if step is not None:
            raise ValueError("a checkpoint holds one step: pass stored=True to load the weights at another")
        _within_budget(folder, folder.config(), height, width)  # the checkpoint is read up to the size of this model
        state = folder.checkpoint(resume=False)
        try:
            cfg = RunConfig.from_json(state["config"])
            at = int(state["step"])
        except (ConfigError, TypeError, ValueError) as e:
            raise RunFolderError(f"checkpoint of {folder.path} holds an invalid config or step: {first_line(e)}") from None
        model, state = _model(folder, cfg, height, width), state["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError) as e:  # wrong shapes or keys, or no state dict at all
        raise RunFolderError(f"{folder.path}: the weights at step {at:,} do not fit the run's model: {first_line(e)}") from None
    model.eval().to(device)
    return LoadedRun(model, cfg, height, width, at)


def _within_budget(folder: RunFolder, cfg: RunConfig, height: int, width: int) -> None:
    """Refuse (RunFolderError) a model of `cfg` over the memory budget (`budget.check`, not training)."""
    try:
        budget.check(cfg, None, (height, width), training=False)
    except MemoryBudgetError as e:
        raise RunFolderError(f"{folder.path}: {e.words(advice=False)}") from None


def _model(folder: RunFolder, cfg: RunConfig, height: int, width: int) -> nn.Module:
    """The model of `cfg`, built only once its memory is within the budget."""
    _within_budget(folder, cfg, height, width)
    return model_for(cfg, height, width)


def run_preview_batch(cfg: RunConfig, target: Target, n: int | None = None,
                      device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The run's preview batch (what samples.png shows): coordinates (n, 2) and labels or values, as numpy.

    Drawn as `training.Trainer.preview_batch` draws it: the mode's sampler over the run's
    training pixels only (`sampling.holdout_split` seeded by the run's "holdout" stream)
    and the run's own "preview" stream (`sampling.preview_batch`); `n` None is the run's
    batch size. `device` None: the run's device if this machine has it, else the CPU (the
    batch is the same on every device: its bits are exact integer arithmetic).
    """
    if device is None:
        try:
            device = resolve_device(cfg.device)
        except DeviceError:
            device = torch.device("cpu")
    seeds = derived_seeds(cfg.seed)
    mode = get_mode(cfg.data.mode)
    split = holdout_split(cfg.data.holdout, target.height, target.width, seeds["holdout"], device)
    sampler = mode.sampler(mode.target_tensor(target, device), split)
    return preview_batch(sampler, seeds["preview"], n or cfg.optim.batch_size)


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
    from safetensors import SafetensorError
    from safetensors.torch import load as tensors_from

    p = Path(path)
    if not p.is_file():
        raise ExportError(f"{p} does not exist" if not p.exists() else f"{p} is not a file")
    try:
        # The named file may be a link (the user named it); it must be a regular file, and no FIFO blocks the open.
        with open_plain_file(p.parent, p.name, max_bytes=None, follow_folder=True) as f:
            _, metadata, _ = safetensors_header(f, p.name)
            cfg, height, width, step = _export_metadata(p, metadata)
            model = model_for(cfg, height, width)
            # Only a file whose tensors are this model's is read past its header: its size is the model's.
            raw, _ = read_safetensors(f, p.name, {name: tuple(t.shape) for name, t in model.state_dict().items()})
        tensors = tensors_from(raw)
    except OSError as e:  # NotPlainFile: not a regular file, a malformed header, tensors that are not the model's
        raise ExportError(f"{p} is not a readable safetensors file: {e.strerror or e}") from None
    except SafetensorError as e:
        raise ExportError(f"{p} is not a readable safetensors file: {first_line(e)}") from None
    try:
        digest = safetensors_digest(tensors, metadata)
    except (RuntimeError, TypeError) as e:
        raise ExportError(f"{p} is not a readable overfit export: {first_line(e)}") from None
    if metadata.get("sha256") != digest:
        raise ExportError(f"{p} is corrupted or was modified: its checksum does not match its contents")
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as e:
        raise ExportError(f"{p}: the weights do not fit the config's model: {first_line(e)}") from None
    model.eval().to(device)
    return LoadedRun(model, cfg, height, width, step)


def _export_metadata(p: Path, metadata: dict[str, str]) -> tuple[RunConfig, int, int, int]:
    """(config, height, width, step) from an export's metadata, checked (the memory of its model too) before it is built."""
    if metadata.get("format") != SAFETENSORS_FORMAT:
        raise ExportError(f"{p} is not an overfit safetensors export (no {SAFETENSORS_FORMAT!r} format tag)")
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
    return cfg, height, width, step


def load(path: str | os.PathLike, device: str | torch.device = "cpu") -> LoadedRun:
    """A fitted model from a run folder or a `.safetensors` export (what `overfit render` accepts)."""
    p = Path(path)
    if p.is_file() and p.suffix == ".safetensors":
        return load_safetensors(p, device)
    return load_run_model(p, device)
