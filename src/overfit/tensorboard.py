"""TensorBoard event files of a run, in its folder's tensorboard/: written while it trains, or afterwards from its folder.

    tensorboard --logdir runs          # every run; a sweep's trials side by side in the HParams tab

`Board` is an event callback like the recorder (`session` puts it right after the
recorder where `RunConfig.tensorboard` is set, and closes it with the session); `convert`
writes the same events for a run folder made without it, from its metrics.jsonl,
frames and stored weights. Both go through one `EventWriter`, so a tag means the same
either way:

    scalars     every number of an evaluation record: <scope>/<metric> for the registry's
                metrics (dense/acc, test/psnr, train/loss, `metricinfo`), layers/<layer>/<statistic>
                (dead, pre_std, weight_norm, grad_norm, ...), bands/<k> (the error of frequency
                band k, 1 the lowest, `spectrum`), time/train_seconds and time/steps_per_s (the
                training speed since the evaluation before, from train_seconds)
    images      prediction: the frame the run writes at each evaluation (the same 8-bit pixels);
                target: the run's picture, once
    histograms  weights/<name>: every floating tensor of the model's state (parameters and
                buffers); gradients/<name>: each parameter's gradient of the step before the evaluation
    text        config: the run's config.json (again where a resume changed it); its fields as hparams (one
                session per run)

Only evaluations write (a "log" event between them costs nothing). A resumed run appends a
new event file that purges anything after its checkpoint from the older ones. A converted
run has no gradient histograms (a run folder keeps no gradients; the layers/*/grad_norm
scalars stay) and weight histograms only at the evaluations whose weights the run kept
(`recorder.keeps_weights`), in the half precision they are stored in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from . import configio, metricinfo
from .config import RunConfig
from .errors import MissingDependency, RunFolderError
from .images import read_png, to_uint8
from .runs import TARGET, TENSORBOARD, RunFolder

HISTOGRAM_VALUES = 1 << 18  # a larger tensor's histogram is drawn from an evenly strided subset of this many values
FLUSH_SECONDS = 10  # how stale a TensorBoard watching a live run may be


def require(field: str | None = "tensorboard") -> None:
    """The `tensorboard` package (torch's writer needs it), or a one-line MissingDependency naming the extra."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise MissingDependency("TensorBoard logging", "tensorboard", "tensorboard", field=field) from None


def events_in(run: str | Path) -> list[Path]:
    """The event files in run folder `run`'s tensorboard/, oldest first."""
    return sorted((Path(run) / TENSORBOARD).glob("events.out.tfevents.*"))


def scalars(record: Mapping[str, Any], previous: Mapping[str, Any] | None = None) -> dict[str, float]:
    """Tag -> value of every number in an evaluation `record` (see the module's docstring); `previous`: the
    evaluation before it, for the speed in between."""
    out: dict[str, float] = {}
    for key, value in record.items():
        if key == "layers":
            for layer in value:
                out.update({f"layers/{layer['layer']}/{name}": float(v) for name, v in layer.items()
                            if name not in ("layer", "units") and _number(v)})
        elif key == "bands":
            out.update({f"bands/{k}": float(v) for k, v in enumerate(value, 1) if _number(v)})
        elif key == "train_seconds" and _number(value):
            out["time/train_seconds"] = float(value)
        elif key != "step" and _number(value):
            parts = metricinfo.parse(key)
            out[f"{parts.scope.rstrip('_')}/{parts.metric.name}" if parts and not parts.outer else key] = float(value)
    if previous is not None:
        steps = record["step"] - previous.get("step", 0)
        seconds = record.get("train_seconds", 0.0) - previous.get("train_seconds", 0.0)
        if steps > 0 and seconds > 0:
            out["time/steps_per_s"] = steps / seconds
    return out


def hparams(cfg: RunConfig) -> dict[str, bool | float | str]:
    """Every config field by its dotted name as TensorBoard takes a value: a bool, a number or a string
    (a tuple as '64,256,64', None as 'none')."""
    out: dict[str, bool | float | str] = {}
    for key in configio.leaf_keys(RunConfig):
        value = configio.get_path(cfg, key)
        if isinstance(value, (bool, str)):
            out[key] = value
        elif isinstance(value, (int, float)):
            out[key] = float(value)
        elif isinstance(value, tuple):
            out[key] = ",".join(str(v) for v in value)
        else:
            out[key] = "none" if value is None else str(value)
    return out


class EventWriter:
    """One event file in `run`/tensorboard/ (torch's `SummaryWriter`); `purge_step`: events at or after it in older files are void."""

    def __init__(self, run: str | Path, purge_step: int | None = None) -> None:
        require()
        from torch.utils.tensorboard import SummaryWriter

        self.fresh = not events_in(run)  # hparams and target are written once per run
        self.writer = SummaryWriter(log_dir=str(Path(run) / TENSORBOARD), purge_step=purge_step, flush_secs=FLUSH_SECONDS)

    def begin(self, cfg: RunConfig, target: np.ndarray | None, step: int) -> None:
        """The config as text; in a run's first file also as hparams (a session of the HParams tab), and the picture fitted.

        A resumed run's config (a raised schedule.steps, say) is written again at the step it resumes from.
        """
        from tensorboard.plugins.hparams import plugin_data_pb2

        text = cfg.to_json()
        self.writer.add_text("config", "\n".join("    " + line for line in text.splitlines()), step)  # a Markdown code block
        if not self.fresh:
            return
        start = plugin_data_pb2.SessionStartInfo()
        for key, value in hparams(cfg).items():
            if isinstance(value, bool):
                start.hparams[key].bool_value = value
            elif isinstance(value, float):
                start.hparams[key].number_value = value
            else:
                start.hparams[key].string_value = value
        self._hparams_summary(step, session_start_info=start)
        if target is not None:
            self.image("target", target, step)

    def end(self, step: int, failed: bool = False) -> None:
        """Mark the run's session ended, done or failed (diverged, or stopped by an error): the HParams tab shows it."""
        from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

        status = api_pb2.STATUS_FAILURE if failed else api_pb2.STATUS_SUCCESS
        self._hparams_summary(step, session_end_info=plugin_data_pb2.SessionEndInfo(status=status))

    def _hparams_summary(self, step: int, **info: Any) -> None:
        """The hparams plugin's session start or end info, as the plugin reads it (what torch's `add_hparams` writes,
        without the separate folder it makes, and with booleans as booleans)."""
        from tensorboard.compat.proto.summary_pb2 import Summary, SummaryMetadata
        from tensorboard.plugins.hparams import metadata, plugin_data_pb2

        tag = metadata.SESSION_START_INFO_TAG if "session_start_info" in info else metadata.SESSION_END_INFO_TAG
        content = plugin_data_pb2.HParamsPluginData(version=metadata.PLUGIN_DATA_VERSION, **info).SerializeToString()
        plugin = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME, content=content))
        self.writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, metadata=plugin)]), step)

    def evaluation(self, record: Mapping[str, Any], previous: Mapping[str, Any] | None, frame: np.ndarray | None,
                   weights: Mapping[str, Any] | None = None, gradients: Mapping[str, Any] | None = None) -> None:
        """One evaluation: its scalars, its frame (uint8 (H, W) or (H, W, 3)), and histograms of `weights` and
        `gradients` (name -> tensor) where given."""
        step = int(record["step"])
        for tag, value in scalars(record, previous).items():
            self.writer.add_scalar(tag, value, step)
        if frame is not None:
            self.image("prediction", frame, step)
        for group, tensors in (("weights", weights), ("gradients", gradients)):
            for name, tensor in (tensors or {}).items():
                values = _histogram_values(tensor)
                if values is not None:
                    self.writer.add_histogram(f"{group}/{name}", values, step)

    def image(self, tag: str, picture: np.ndarray, step: int) -> None:
        self.writer.add_image(tag, picture, step, dataformats="HW" if picture.ndim == 2 else "HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Board:
    """The event callback that writes a run's TensorBoard events while it trains, beside its `Recorder`.

    The event file opens at the first evaluation this session sees (a resumed run's first one
    purges what older files hold from that step on) and closes with `close`.
    """

    def __init__(self, folder: RunFolder) -> None:
        require()  # before anything trains
        self.folder = folder
        self.writer: EventWriter | None = None

    def __call__(self, event: Any) -> None:
        if event.kind == "eval":
            trainer = event.trainer
            if self.writer is None:
                self.writer = EventWriter(self.folder.path, purge_step=event.step)
                self.writer.begin(trainer.cfg, _target(self.folder) if self.writer.fresh else None, event.step)
            history = trainer.history
            model = trainer.model
            gradients = {name: p.grad for name, p in model.named_parameters() if p.grad is not None}
            self.writer.evaluation(event.metrics, history[-2] if len(history) > 1 else None, to_uint8(event.prediction),
                                   model.state_dict(), gradients)
        elif self.writer is not None and event.kind in ("end", "interrupt", "chunk"):
            if event.kind == "end":
                self.writer.end(event.step)
            self.writer.flush()

    def failed(self, step: int) -> None:
        """The run stopped for good at `step` without finishing (diverged, or an error); written at once."""
        if self.writer is not None:
            self.writer.end(step, failed=True)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def convertible(run: str | Path, force: bool = False) -> RunFolder:
    """Run folder `run`, if `convert` can write its events: a run folder with evaluations, whose tensorboard/ holds no
    events yet (or `force`); a RunFolderError saying why not otherwise."""
    require(field=None)
    folder = RunFolder.open(run)
    folder.config()  # readable
    if not folder.metrics():
        raise RunFolderError(f"run folder {folder.path} has no evaluations in its metrics.jsonl yet; nothing to convert")
    if events_in(folder.path) and not force:
        raise RunFolderError(f"{folder.path / TENSORBOARD} already holds TensorBoard events; replace them with --force")
    return folder


def convert(run: str | Path, force: bool = False) -> dict[str, int]:
    """Write run folder `run`'s TensorBoard events from what it keeps (metrics, frames, stored weights).

    Refuses what `convertible` refuses, and a run that is training now (its lock); with
    `force`, events already in its tensorboard/ are replaced. Returns the counts written:
    evaluations, pictures, weights (evaluations with weight histograms).
    """
    folder = convertible(run, force)
    with folder:
        folder.lock()
        cfg, records = folder.config(), folder.metrics()
        for old in events_in(folder.path):  # only with `force` (`convertible`)
            old.unlink()
        weight_steps = set(folder.weight_steps())
        counts = {"evaluations": 0, "pictures": 0, "weights": 0}
        writer = EventWriter(folder.path)
        try:
            writer.begin(cfg, _target(folder), records[0]["step"])
            for i, record in enumerate(records):
                step = record["step"]
                frame = _read(folder.frame_path(step))
                weights = folder.read_weights(step) if step in weight_steps else None
                writer.evaluation(record, records[i - 1] if i else None, frame, weights)
                counts["evaluations"] += 1
                counts["pictures"] += frame is not None
                counts["weights"] += weights is not None
            ending = folder.ending(records)
            if folder.finished(records=records):
                writer.end(records[-1]["step"])
            elif ending is not None and ending.failed:
                writer.end(ending.step, failed=True)
        finally:
            writer.close()
    return counts


def _target(folder: RunFolder) -> np.ndarray | None:
    return _read(folder.path / TARGET)


def _read(path: Path) -> np.ndarray | None:
    """A picture as stored (gray or RGB), or None where it is missing or unreadable."""
    try:
        return read_png(path)
    except (OSError, ValueError):
        return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _histogram_values(tensor: Any) -> np.ndarray | None:
    """A floating tensor's finite values as float32 numpy (at most HISTOGRAM_VALUES of them, evenly strided); None for others."""
    if not getattr(tensor, "is_floating_point", lambda: False)() or tensor.numel() == 0:
        return None
    flat = tensor.detach().reshape(-1)
    if flat.numel() > HISTOGRAM_VALUES:
        flat = flat[:: math.ceil(flat.numel() / HISTOGRAM_VALUES)]
    values = flat.float().cpu().numpy()
    values = values[np.isfinite(values)]
    return values if values.size else None
