"""Errors in a notebook: one line under the cell, never a traceback through overfit's code.

IPython shows an exception through its `_render_traceback_` when it has one (the hook
IPython's own magics use). The notebook API turns each `OverfitError` (the user's input:
an unknown preset, a bad config value, a finished run) into a `NotebookError` of the same
words, and a missing optional package into `MissingExtra`, which says what to install.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ..errors import OverfitError

F = TypeVar("F", bound=Callable[..., Any])
INSTALL = "pip install 'overfit-lab[notebook]'"


class NotebookError(OverfitError):
    """An `OverfitError` raised by the notebook API: shown as one line in a notebook."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


class MissingExtra(ImportError):
    """An optional package the notebook front end needs is not installed."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def require(module: str = "anywidget") -> None:
    """MissingExtra naming the pip command unless `module` can be imported."""
    try:
        __import__(module)
    except ImportError:
        raise MissingExtra(f"the notebook widget needs {module}: {INSTALL}") from None


def one_line(fn: F) -> F:
    """`fn` with its OverfitErrors raised as NotebookErrors (one line in a notebook), the field kept."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NotebookError:
            raise
        except OverfitError as e:
            raise NotebookError(e.detail, e.field) from None
    return wrapper  # type: ignore[return-value]
