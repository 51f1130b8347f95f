"""The lab's refusals: `LabError` and the one mapping from overfit's error types to HTTP answers.

Everything the browser can get wrong (a bad config value, an unknown run, a full
server, a picture that is not a picture) is a `LabError` carrying the HTTP status,
a one-line message for people and, where one input is to blame, the field's name.
The app answers `{"error": message, "field": field}` and never a stack trace.

An `OverfitError` from the library becomes a `LabError` by its type and its `field`
(`lab_error`), never by reading its text: a run that exists or is busy is a conflict
(409), a config value or picture that cannot be used is the request's fault (422,
naming the config key). Server paths in the detail are replaced by the names the
page knows, so no file-system path ever reaches the browser.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from ..errors import ConfigError, DeviceError, OverfitError, RunBusyError, RunExistsError, RunFolderError, TargetError

# HTTP status by error type, the first match wins (subclasses before their bases).
STATUS_BY_TYPE: tuple[tuple[type[OverfitError], int], ...] = (
    (RunExistsError, 409),   # a run of that name is on disk: choose another name
    (RunBusyError, 409),     # another process trains it: wait, or stop that one
    (RunFolderError, 409),   # the run's folder refuses it (finished, edited, unreadable)
    (ConfigError, 422),
    (TargetError, 422),
    (DeviceError, 422),
)
# The config key to blame for an error that names none.
FIELD_BY_TYPE: tuple[tuple[type[OverfitError], str], ...] = (
    (DeviceError, "device"),
    (TargetError, "data.text"),  # a text target (an uploaded picture's errors are the upload's)
)
# A run-folder error about the lab's own runs folder is the server's problem, not the request's.
SERVER_FIELDS = ("runs_dir",)


class LabError(OverfitError):
    """A refused request: `status` is the HTTP status, `field` the input to blame (or None)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message, field)
        self.status = status

    def payload(self) -> dict[str, str]:
        body = {"error": self.detail}
        if self.field is not None:
            body["field"] = self.field
        return body


# An absolute path in a message: a '/' (or a drive, 'C:\\') not inside a word, then path characters up to a space or quote.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/\\])(?:[A-Za-z]:[\\/]|/)[^\s'\"<>|,;]*")


def hide_paths(text: str | None, runs_dir: Path) -> str | None:
    """`text` as the page may see it: paths under the runs folder relative to it, any other absolute path cut to its
    file name. A reason written into a run folder (by the lab, or `overfit train` elsewhere) or an OSError's text
    names server paths; the browser learns none of them."""
    if text is None:
        return None
    for path, name in runs_dir_names(runs_dir).items():
        text = text.replace(path, name)
    return _ABSOLUTE_PATH.sub(lambda m: re.split(r"[\\/]", m.group(0).rstrip("\\/"))[-1] or "/", text)


def runs_dir_names(runs_dir: Path) -> dict[str, str]:
    """How the page names paths under the runs folder: a run by its folder name, the folder itself as "the runs folder"."""
    return {str(runs_dir) + os.sep: "", str(runs_dir): "the runs folder"}


def _status(e: OverfitError) -> int:
    if isinstance(e, RunFolderError) and e.field in SERVER_FIELDS:
        return 500
    return next((status for kind, status in STATUS_BY_TYPE if isinstance(e, kind)), 422)  # the rest: the user's input


def lab_error(e: OverfitError, hide: Mapping[str, str] | None = None, upload: str | None = None) -> LabError:
    """`e` as the lab's answer: status by its type, field from `e.field` (or its type's default).

    `hide` maps server paths to what the page calls them; `upload` is the stored path of
    the picture the request named by upload id: a picture error is then the upload's
    (field 'upload'), and its path is called "the uploaded file".
    """
    if isinstance(e, LabError):
        return e
    field = e.field or next((name for kind, name in FIELD_BY_TYPE if isinstance(e, kind)), None)
    replacements: dict[str, str] = {}
    if upload is not None:  # first: the upload lies inside the runs folder that `hide` names
        replacements[upload] = "the uploaded file"
        if isinstance(e, TargetError):
            field = "upload"
    replacements.update(hide or {})
    detail = e.detail
    for path, name in replacements.items():
        detail = detail.replace(path, name)
    return LabError(_status(e), detail, field=field)
