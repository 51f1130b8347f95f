"""`overfit lab`: the live lab in the browser.

A small FastAPI app (`app.create_app`) over a run manager that trains ordinary run
folders in background threads (`manager`), streams their progress to any number of
browser tabs (`stream`), accepts uploaded pictures (`uploads`) and draws live
previews and colour-mapped frames (`pictures`). The page itself is plain HTML, CSS
and JavaScript modules in `static/`, with no build step and nothing fetched from
the network.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
