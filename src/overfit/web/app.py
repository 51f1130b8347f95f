"""The lab's web app: HTTP routes over the run manager (the live WebSocket is in `sockets`).

    GET  /                              the page (static/index.html)
    GET  /api/meta                      config fields, sections, defaults, presets, modes, colour map, limits
    GET  /api/runs                      every run folder in runs_dir
    POST /api/runs                      {"config": {...}, "upload": id?, "name": str?} -> a new run (201)
    GET  /api/runs/{id}                 state, curves and frame steps of one run
    POST /api/runs/{id}/start|pause|step|reset
    GET  /api/runs/{id}/target.png      the target as the network sees it
    GET  /api/runs/{id}/frames/{step}.png   a saved evaluation frame
    GET  /api/runs/{id}/download/{kind} video, gif, final, config or checkpoint
    POST /api/uploads                   the picture's bytes as the body -> {"id": sha256, ...}
    GET  /api/target.png?text=..        a target drawn before any run exists (or ?upload=id)
    WS   /api/runs/{id}/live            snapshot, then ticks, previews, evaluations, status

Safety: the browser never names a path (runs by folder name, checked against the run
folder rule; pictures by upload id); every refusal is JSON {"error": ..., "field": ...}
with a 4xx status, never a stack trace (`errors`); Host and Origin headers are checked
before any route (`guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..images import read_png
from ..modes import get_mode
from ..runs import TARGET
from . import pictures
from .errors import LabError
from .forms import json_body, lab_config, target_picture
from .guard import Guard, allowed_hosts, is_loopback
from .labrun import AT_THE_END, DOWNLOADS
from .manager import RunManager
from .meta import meta
from .sockets import live_route
from .stream import Hub
from .uploads import MAX_LAB_PIXELS, MAX_UPLOAD_BYTES, UploadStore

__all__ = ["create_app", "is_loopback"]

log = logging.getLogger("overfit.lab")
STATIC = Path(__file__).resolve().parent / "static"
_FRAME = re.compile(r"^(\d{1,12})\.png$")


def create_app(
    runs_dir: str | os.PathLike = "runs",
    max_runs: int | None = None,
    host: str = "127.0.0.1",
    upload_max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_LAB_PIXELS,
) -> FastAPI:
    """The lab app for `runs_dir`; `host` is the address the server binds (it decides which Host headers are served)."""
    runs_path = Path(runs_dir).resolve()
    hub = Hub()
    uploads = UploadStore(runs_path, upload_max_bytes, max_pixels)
    manager = RunManager(runs_path, hub, max_runs or os.cpu_count() or 1, uploads.id_of)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.attach(asyncio.get_running_loop())
        yield
        # Stopping the server pauses every run at a checkpoint, so each can be resumed.
        await run_in_threadpool(manager.shutdown)

    app = FastAPI(title="overfit lab", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.manager, app.state.hub, app.state.uploads = manager, hub, uploads
    app.add_middleware(Guard, allowed_hosts=allowed_hosts(host))

    _error_handlers(app)
    _page_routes(app, uploads, manager)
    _run_routes(app, manager, uploads)
    _picture_routes(app, uploads)
    live_route(app, manager, hub)
    return app


def _error_handlers(app: FastAPI) -> None:
    """Every refusal as JSON {"error", "field"}; never a traceback."""

    @app.exception_handler(LabError)
    async def lab_error(request: Request, e: LabError) -> JSONResponse:
        return JSONResponse(e.payload(), status_code=e.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        return JSONResponse({"field": field, "error": first.get("msg", "invalid request")}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": str(e.detail)}, status_code=e.status_code, headers=getattr(e, "headers", None))

    @app.exception_handler(Exception)
    async def crash(request: Request, e: Exception) -> JSONResponse:
        log.exception("lab request %s failed", request.url.path)
        return JSONResponse({"error": f"internal error ({type(e).__name__}); the server log has the details"}, status_code=500)


def _page_routes(app: FastAPI, uploads: UploadStore, manager: RunManager) -> None:
    """The page, its static files, and what the page needs to build its forms."""

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    served: dict[str, Any] = {}

    @app.get("/api/meta")
    def page_meta() -> dict[str, Any]:
        if not served:  # the same for the server's life; built at the first request, not at start-up (matplotlib's colour map)
            served.update(meta(uploads, manager.max_runs))
        return served


def _run_routes(app: FastAPI, manager: RunManager, uploads: UploadStore) -> None:
    """Listing, creating and controlling runs, and their pictures and files."""

    @app.get("/api/runs")
    def list_runs() -> dict[str, Any]:
        running = len(manager.running())
        return {"runs": manager.list(), "running": running, "max_runs": manager.max_runs}

    @app.post("/api/runs", status_code=201)
    async def create_run(request: Request) -> dict[str, Any]:
        cfg, name = lab_config(await json_body(request), uploads)
        run = await run_in_threadpool(manager.create, cfg, name)
        return run.detail()

    @app.get("/api/runs/{run_id}")
    def run_detail(run_id: str) -> dict[str, Any]:
        return manager.get(run_id).detail()

    @app.post("/api/runs/{run_id}/start")
    def start(run_id: str) -> dict[str, Any]:
        return manager.start(run_id).summary()

    @app.post("/api/runs/{run_id}/pause")
    def pause(run_id: str) -> dict[str, Any]:
        return manager.pause(run_id).summary()

    @app.post("/api/runs/{run_id}/step")
    def step(run_id: str) -> dict[str, Any]:
        return manager.step(run_id).summary()

    @app.post("/api/runs/{run_id}/reset", status_code=201)
    def reset(run_id: str) -> dict[str, Any]:
        return manager.reset(run_id).detail()

    @app.get("/api/runs/{run_id}/target.png")
    def run_target(run_id: str) -> Response:
        run = manager.get(run_id)
        try:
            picture = read_png(run.folder.path / TARGET)
        except OSError:
            raise LabError(404, f"run {run_id} has no target picture") from None
        return _png(pictures.show_target(picture, run.mode))

    @app.get("/api/runs/{run_id}/frames/{frame}")
    def frame(run_id: str, frame: str) -> Response:
        run = manager.get(run_id)
        m = _FRAME.match(frame)
        path = run.folder.frame_path(int(m.group(1))) if m else None
        if path is None or not path.is_file():
            raise LabError(404, f"run {run_id} has no frame {frame!r}")
        return _png(pictures.show_frame(read_png(path), run.mode))

    @app.get("/api/runs/{run_id}/download/{kind}")
    def download(run_id: str, kind: str) -> FileResponse:
        run = manager.get(run_id)
        if kind not in DOWNLOADS:
            raise LabError(404, f"nothing to download called {kind!r}; choose from {', '.join(DOWNLOADS)}")
        file, media_type, _ = DOWNLOADS[kind]
        path = run.path / file
        if not path.is_file():
            raise LabError(404, f"run {run_id} has no {file} yet" + (" (it is written when training ends)" if kind in AT_THE_END else ""))
        return FileResponse(path, media_type=media_type, filename=f"{run_id}-{file}")


def _picture_routes(app: FastAPI, uploads: UploadStore) -> None:
    """Uploads, and the target a new run would fit."""

    @app.post("/api/uploads", status_code=201)
    async def upload(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        saved = await uploads.save(request.stream(), int(length) if length and length.isdigit() else None)
        return {"id": saved.id, "width": saved.width, "height": saved.height}

    @app.get("/api/target.png")
    def target_preview(text: str | None = None, width: int | None = None, height: int | None = None,
                       font_size: int | None = None, mode: str | None = None, upload: str | None = None) -> Response:
        """What a run would fit, before it exists: the same validation as a new run."""
        data = {key: value for key, value in (("text", text), ("width", width), ("height", height),
                                              ("font_size", font_size), ("mode", mode)) if value is not None}
        cfg, _ = lab_config({"config": {"data": data}, "upload": upload}, uploads)
        return _png(pictures.show_target(target_picture(cfg), get_mode(cfg.data.mode)))


def _png(picture: np.ndarray) -> Response:
    return Response(pictures.png(picture), media_type="image/png", headers={"Cache-Control": "no-cache"})
