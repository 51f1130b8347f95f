"""`overfit lab`: the live lab in the browser.

A small FastAPI app (`app.create_app`: routes; `guard`: Host, access-token and Origin checks;
`sockets`: the live WebSocket; `meta`: what the page knows about the server) over
a run manager (`manager`) that creates and resumes ordinary run folders through
`Session` and trains them in chunks on one worker thread (`training`, `worker`). Each
run as the page sees it is a `labrun.LabRun`; its curves and live previews are
`live`'s, its pictures `pictures`'. Progress streams to every browser tab that
watches (up to `--max-viewers` per run; `stream`); pictures arrive as uploads
(`uploads`); refusals are `errors.LabError`. The page itself is plain HTML, CSS and
JavaScript modules in `static/`, with no build step and nothing fetched from the network.
"""

from __future__ import annotations

from .app import create_app

__all__ = ["create_app"]
