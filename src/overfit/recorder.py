"""The event callback that records a run into its folder: metrics, frames, checkpoints, final pictures, videos.

    trainer.run([Recorder(folder), progress_bar])

"eval": a metrics line, the prediction as a frame, a checkpoint. "interrupt": a
checkpoint (the run continues from it). "chunk" writes nothing (the lab steps a run in
short chunks and checkpoints when it pauses). "end": final.png and the progress videos,
from the frames and metrics on disk.
"""

from __future__ import annotations

from typing import Any

from .images import to_uint8
from .modes import get_mode
from .runs import FINAL, GIF, MP4, SAMPLES, TARGET, RunFolder


class Recorder:
    """Writes a run's events into its (locked) `RunFolder`."""

    def __init__(self, folder: RunFolder) -> None:
        self.folder = folder

    def start(self, trainer: Any) -> None:
        """Write what a new run knows before its first step: config, target, one training batch."""
        from . import plots

        folder, target = self.folder, trainer.target
        folder.write_config(trainer.cfg)
        folder.write_picture(TARGET, target.image)
        yx, labels = trainer.preview_batch()
        plots.save_samples_plot(yx, labels, target.height, target.width, folder.path / SAMPLES)

    def __call__(self, event: Any) -> None:
        if event.kind == "eval":
            self.folder.append_metrics(event.metrics)
            self.folder.write_frame(event.step, to_uint8(event.prediction))
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
