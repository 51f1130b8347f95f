"""`show(run_folder)`: a finished run in a notebook as plain HTML: its video, its curves and its final picture.

No widget and no kernel needed to look at the output again: the pictures and the video are
embedded in the HTML (`data:` URLs), so a saved notebook shows them anywhere, GitHub's
viewer included. The run folder's files are read as untrusted input, as the lab reads them
(`safefiles`: no link followed, each file within its kind's size); a video larger than
`MAX_VIDEO_BYTES` is left out with a line saying where it is.
"""

from __future__ import annotations

import base64
import html
import os
from pathlib import Path
from typing import Any

from .. import metricinfo
from ..modes import get_mode
from ..runs import FINAL, MP4, RunFolder
from ..safefiles import NotPlainFile, open_plain_file
from ..showing import curves_png, embedded_img
from .errors import NotebookError, one_line

# The largest video embedded in the notebook (base64 adds a third).
MAX_VIDEO_BYTES = 20 * 2**20


def _read(folder: Path, name: str, max_bytes: int) -> bytes | None:
    """A file of the run folder, or None when it is missing, a link or larger than `max_bytes`."""
    try:
        with open_plain_file(folder, name, max_bytes=max_bytes, follow_folder=True) as f:
            return f.read()
    except (FileNotFoundError, NotPlainFile):
        return None


class RunView:
    """A run folder as a notebook shows it (`_repr_html_`): headline, video, curves, final picture."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.folder = RunFolder.open(self.path)
        self.cfg = self.folder.config()
        self.records = self.folder.metrics()

    def _repr_html_(self) -> str:
        mode = get_mode(self.cfg.data.mode)
        last = self.records[-1] if self.records else {}
        info = metricinfo.info(mode.headline)
        value = last.get(mode.headline)
        headline = f"{info.label} {info.format(value)}" if isinstance(value, (int, float)) else "no evaluation yet"
        title = (f"<b>{html.escape(self.path.name)}</b> · {html.escape(self.cfg.preset or 'custom')} · "
                 f"step {last.get('step', 0):,} of {self.cfg.schedule.steps:,} · {html.escape(headline)} · {self.folder.status(self.records)}")
        parts = [f"<div class='overfit-run'><p>{title}</p>"]
        video = _read(self.path, MP4, MAX_VIDEO_BYTES)
        if video is not None:
            parts.append(f"<video controls loop muted style='max-width:100%' src='data:video/mp4;base64,{base64.b64encode(video).decode()}'></video>")
        elif (self.path / MP4).exists():
            parts.append(f"<p>the video is larger than {MAX_VIDEO_BYTES // 2**20} MiB: {html.escape(str(self.path / MP4))}</p>")
        curves = curves_png(self.records, mode.headline)
        if curves is not None:
            parts.append(embedded_img(curves, "curves"))
        final = _read(self.path, FINAL, 64 * 2**20)
        if final is not None:
            parts.append(embedded_img(final, "final picture"))
        return "\n".join(parts) + "</div>"

    def __repr__(self) -> str:
        return f"RunView({str(self.path)!r})"


@one_line
def show(run_folder: str | os.PathLike) -> RunView:
    """A run folder shown in a notebook (the cell's last expression, or IPython's `display`)."""
    if not isinstance(run_folder, (str, os.PathLike)):
        raise NotebookError(f"a run folder is a path, not {type(run_folder).__name__}", "run_folder")
    return RunView(run_folder)
