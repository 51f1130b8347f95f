"""overfit in a notebook: `Lab`, the lab's live views as a widget, and `show`, a finished run as HTML.

    from overfit.notebook import Lab, show
    lab = Lab("relu_1", steps=2000)      # shown by being the cell's last expression
    lab.start()                          # trains in the background; lab.pause(), lab.step(), lab.wait()
    show("runs/relu_1-...")              # a finished run: its video, curves and final picture

`Lab` needs the `notebook` extra (anywidget); without it, one line says what to install.
Importing this package costs neither torch nor anywidget: each name is imported on first use.
"""

from __future__ import annotations

from typing import Any

from .errors import MissingExtra, NotebookError

_LAZY = {"Lab": "lab", "show": "runview", "RunView": "runview"}
__all__ = ["Lab", "MissingExtra", "NotebookError", "RunView", "show"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'overfit.notebook' has no attribute {name!r}")
