"""The event callback that records a run into its folder: metrics, frames, checkpoints, final pictures, videos.

    trainer.run([Recorder(folder), progress_bar])

"eval": a metrics line, the prediction as a frame, the weights for the network view
(at most `WEIGHT_SNAPSHOTS` per run, evenly spread, and none for models above
`SNAPSHOT_PARAMS` parameters), a checkpoint. "interrupt": a
checkpoint (the run continues from it). "chunk" writes nothing (the lab steps a run in
short chunks and checkpoints when it pauses). "end": final.png and the progress videos,
from the frames and metrics on disk.
"""

from __future__ import annotations

import math
from typing import Any

from .images import to_uint8
from .modes import get_mode
from .runs import FINAL, GIF, MP4, SAMPLES, TARGET, RunFolder


WEIGHT_SNAPSHOTS = 100  # a run keeps the weights of at most this many evaluations (and always the last)
SNAPSHOT_PARAMS = 1_000_000  # larger models keep none: 2 bytes per parameter per snapshot


def keeps_weights(trainer: Any, index: int, step: int) -> bool:
    """Whether the `index`-th evaluation (0 at step 0) of `trainer`'s run stores its weights."""
    if sum(p.numel() for p in trainer.model.parameters()) > SNAPSHOT_PARAMS:
        return False
    stride = math.ceil(trainer.cfg.schedule.evaluation_count() / WEIGHT_SNAPSHOTS)
    return index % stride == 0 or step == trainer.cfg.schedule.steps


class Recorder:
    """Writes a run's events into its (locked) `RunFolder`."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder

    def start(self, trainer: Any) -> None:
        """Write what a new run knows before its first step: target, config, one training batch.

        config.json last of the two: it is what makes a folder a run folder (`RunFolder.open`), so a process killed
        in between leaves a folder that is refused as "not a run folder" rather than one that cannot resume.
        """
        from . import plots

        folder, target = self.folder, trainer.target
        folder.write_picture(TARGET, target.image)
        folder.write_config(trainer.cfg)
        yx, labels = trainer.preview_batch()
        plots.save_samples_plot(yx, labels, target.height, target.width, folder.path / SAMPLES,
                                classes=get_mode(trainer.cfg.data.mode).classes)

    def __call__(self, event: Any) -> None:
        if event.kind == "eval":
            self.folder.append_metrics(event.metrics)
            self.folder.write_frame(event.step, to_uint8(event.prediction))
            if keeps_weights(event.trainer, len(event.trainer.history) - 1, event.step):
                self.folder.write_weights(event.step, event.trainer.model.state_dict())
            self.checkpoint(event.trainer)
        elif event.kind == "interrupt":
            self.checkpoint(event.trainer)
        elif event.kind == "end":
            self.finish(event.trainer)

    def checkpoint(self, trainer: Any) -> None:
        self.folder.save_checkpoint(trainer.state_dict())

    def finish(self, trainer: Any) -> None:
        """final.png and the progress videos, from the frames and metrics on disk.

        The frames are read from disk as the video writers take them (`StoredFrames`), never
        all at once, so the memory this needs does not grow with the number of evaluations.
        """
        from . import plots, video

        history = self.folder.metrics()
        by_step = {r["step"]: r for r in history}
        stored = self.folder.read_frames([r["step"] for r in history])
        if not stored:
            return
        mode, preset = get_mode(trainer.cfg.data.mode), trainer.cfg.preset
        frames = stored.pictures
        captions = [mode.caption(preset, by_step[step]) for step in stored.steps]

        def final_plot() -> None:
            plots.save_final_plot(mode.target_picture(trainer.target), frames[-1].astype("float32") / 255.0,
                                  self.folder.path / FINAL, title=mode.caption(preset, history[-1]),
                                  prediction_name=mode.prediction_name)

        # final.png is drawn while ffmpeg encodes the MP4 in its own process.
        video.write_progress(frames, captions, self.folder.path / MP4, self.folder.path / GIF, meanwhile=final_plot)
