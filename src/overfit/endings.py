"""How a run ended: one record in its folder, written by every entry point and read by all of them.

    runs/<name>/ending.json   {"how": "finished", "step": 100000, "reason": "trained all 100,000 steps"}

`how` is one of HOWS:

- finished:     trained every step of its budget (final picture and videos written)
- stopped:      ended early on purpose (`overfit reproduce` stops a run that can show nothing new)
- diverged:     the loss became NaN or infinite at `step`; the last good checkpoint is kept
- failed:       training stopped with an error (`reason`); starting it again may work
- interrupted:  stopped by Ctrl-C or the lab's pause, at a checkpoint it resumes from

`Session` writes the record when training stops and removes it when training starts
again, so it always describes the run as it is on disk. `RunFolder.ending()` reads it,
and `RunFolder.finished()` is the one answer to "is this run done?" for the command line,
the lab, sweeps and `overfit reproduce`.

Run folders written before this record existed left `error.json` (the lab),
`diverged.json` or `stopped.json` (`overfit reproduce`), or nothing for a run that simply
finished; `read` understands those too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .safefiles import read_plain

ENDING = "ending.json"
HOWS = ("finished", "stopped", "diverged", "failed", "interrupted")
# What older run folders left instead of ending.json, and what each meant.
LEGACY = (("diverged.json", "diverged"), ("stopped.json", "stopped"), ("error.json", "failed"))


@dataclass(frozen=True)
class Ending:
    """How a run ended, at which step, and why in one line."""

    how: str
    step: int
    reason: str

    @property
    def failed(self) -> bool:
        """Training stopped with a problem (diverged or an error): the lab shows it as failed."""
        return self.how in ("diverged", "failed")

    def done(self, steps: int) -> bool:
        """Whether the run is done under a budget of `steps`: it finished them all, or it stopped early on purpose.

        A run that diverged, failed or was interrupted is not done: it resumes from its checkpoint.
        """
        return self.how == "stopped" or (self.how == "finished" and self.step >= steps)

    def to_json(self) -> str:
        return json.dumps({"how": self.how, "step": self.step, "reason": self.reason}) + "\n"

    @staticmethod
    def parse(record: Any, how: str | None = None) -> Ending | None:
        """The ending in a decoded record (`how` given for the older files, which do not name it); None if malformed."""
        if not isinstance(record, dict):
            return None
        how = how or record.get("how")
        step, reason = record.get("step"), record.get("reason", record.get("error"))
        if how not in HOWS or not isinstance(step, int) or isinstance(step, bool) or step < 0:
            return None
        if how == "diverged" and not isinstance(reason, str):  # diverged.json kept the loss's value instead
            reason = f"training diverged at step {step:,} (the loss became {record.get('value', 'NaN')})"
        return Ending(how, step, reason if isinstance(reason, str) else how)


def read(folder: Path) -> Ending | None:
    """The ending recorded in run folder `folder` (or in the files older versions left), or None; a damaged record is None."""
    for name, how in ((ENDING, None), *LEGACY):
        try:
            text = read_plain(folder, name, kind="ending", follow_folder=True).decode()
        except (OSError, UnicodeDecodeError):  # missing, or a link, FIFO or oversized file (`safefiles`): no record
            continue
        try:
            return Ending.parse(json.loads(text), how)
        except json.JSONDecodeError:
            return None
    return None
