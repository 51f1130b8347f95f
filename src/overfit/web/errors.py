"""The one error type the lab's HTTP layer turns into a JSON answer.

Everything the browser can get wrong (a bad config value, an unknown run, a full
server, a picture that is not a picture) is a `LabError` carrying the HTTP status,
a one-line message for people and, where one input is to blame, the field's name.
The app answers `{"error": message, "field": field}` and never a stack trace.
"""

from __future__ import annotations

from ..config import ConfigError
from ..errors import OverfitError


class LabError(OverfitError):
    """A refused request: `status` is the HTTP status, `field` the input to blame (or None)."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field

    def payload(self) -> dict[str, str]:
        body = {"error": str(self)}
        if self.field is not None:
            body["field"] = self.field
        return body


def config_error(e: ConfigError) -> LabError:
    """A ConfigError as HTTP 422, split into the field it names and the rest of the message.

    ConfigError messages start with the dotted field name and ": " (config.py's
    convention), e.g. "model.hidden: widths must be positive, got [0]".
    """
    text = str(e)
    head, sep, rest = text.partition(": ")
    if sep and head and " " not in head:
        return LabError(422, rest, field=head)
    return LabError(422, text, field="config")
