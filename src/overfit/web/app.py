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
    GET  /api/runs/{id}/network?step=N  the network view at the stored step at or before N (`network`)
    GET  /api/runs/{id}/network/unit?layer=L&unit=U&step=N   one unit, larger, and its incoming weights
    GET  /api/runs/{id}/batch?n=1024    the points of one training batch (y, x, label)
    POST /api/uploads                   the picture's bytes as the body -> {"id": sha256, ...}
    GET  /api/target.png?text=..        a target drawn before any run exists (or ?upload=id)
    WS   /api/runs/{id}/live            snapshot, then ticks, previews, evaluations, status

Safety: the browser never names a path (runs by folder name, checked against the run
folder rule; pictures by upload id) and files are served only as plain files inside
their run folder, never through a symbolic link (`LabRun.open_file`); every refusal is
JSON {"error": ..., "field": ...} with a 4xx status, never a stack trace (`errors`);
Host, Origin and Sec-Fetch-Site headers, and the access token, are checked before any
route (`guard`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..images import read_png
from ..modes import get_mode
from ..runs import CONFIG, TARGET
from . import network as netview
from . import pictures
from .errors import LabError
from .forms import json_body, lab_config, target_picture
from .guard import LOOPBACK_HOST_STATUS, OPEN_HOST_STATUS, Guard, allowed_hosts, is_loopback, new_token
from .labrun import AT_THE_END, DOWNLOADS, LabRun
from .manager import MAX_FOLDERS, RunManager
from .meta import meta
from .sockets import MAX_SOCKETS, MAX_VIEWERS, live_route
from .stream import Mailboxes
from .uploads import MAX_LAB_PIXELS, MAX_UPLOAD_BYTES, UploadStore

__all__ = ["create_app", "is_loopback"]

log = logging.getLogger("overfit.lab")
STATIC = Path(__file__).resolve().parent / "static"
_FRAME = re.compile(r"([0-9]{1,12})\.png")  # fullmatch: ASCII digits only, no trailing newline
_CHUNK_BYTES = 256 * 1024
# Requests waiting for a process at once (beyond that they queue for a thread, reads never do).
CONTROL_THREADS = 64
T = TypeVar("T")


def create_app(
    runs_dir: str | os.PathLike = "runs",
    max_runs: int | None = None,
    host: str = "127.0.0.1",
    upload_max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_LAB_PIXELS,
    allow_hosts: Sequence[str] = (),
    token: str | None = None,
    max_folders: int = MAX_FOLDERS,
    max_viewers: int = MAX_VIEWERS,
    no_token: bool = False,
    max_sockets: int = MAX_SOCKETS,
) -> FastAPI:
    """The lab app for `runs_dir`.

    `host` is the address the server binds: it and `allow_hosts` are the Host names
    served (besides the loopback names). Every request needs the access token: `token`,
    or a new random one; it is `app.state.token`. `no_token` serves without one, and only
    on loopback (ValueError elsewhere): then any program of the machine may use the lab.
    `max_folders` caps the run folders the lab makes, `max_viewers` the live views of one run,
    `max_sockets` the live views in all.
    """
    runs_path = Path(runs_dir).resolve()
    if no_token:
        if not is_loopback(host):
            raise ValueError(f"the lab listens on {host}, which other machines reach: it needs its access token there")
        token = None
    elif token is None:
        token = new_token()
    mailboxes = Mailboxes()
    uploads = UploadStore(runs_path, upload_max_bytes, max_pixels)
    uploads.remove_stale()  # left by a lab killed mid-upload
    manager = RunManager(runs_path, mailboxes, max_runs or os.cpu_count() or 1, uploads.id_of, max_folders)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        mailboxes.attach(asyncio.get_running_loop())
        yield
        # Stopping the server pauses every run at a checkpoint, so each can be resumed.
        await run_in_threadpool(manager.shutdown)

    app = FastAPI(title="overfit lab", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.manager, app.state.mailboxes, app.state.uploads, app.state.token = manager, mailboxes, uploads, token
    app.add_middleware(Guard, allowed_hosts=allowed_hosts(host, allow_hosts), token=token,
                       host_status=LOOPBACK_HOST_STATUS if is_loopback(host) else OPEN_HOST_STATUS)

    _error_handlers(app)
    _page_routes(app, uploads, manager)
    _run_routes(app, manager, uploads)
    _picture_routes(app, uploads)
    live_route(app, manager, mailboxes, max_viewers, max_sockets)
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

    # Requests that wait for a process (create, start, step, pause, reset) wait in threads
    # of their own (`ControlThreads`), never in the pool that serves the reads.
    control = ControlThreads()

    @app.post("/api/runs", status_code=201)
    async def create_run(request: Request) -> dict[str, Any]:
        cfg, name = lab_config(await json_body(request), uploads)
        run = await control.run(manager.create, cfg, name)
        return run.detail()

    @app.get("/api/runs/{run_id}")
    def run_detail(run_id: str) -> dict[str, Any]:
        return manager.get(run_id).detail()

    @app.post("/api/runs/{run_id}/start")
    async def start(run_id: str) -> dict[str, Any]:
        return (await control.run(manager.start, run_id)).summary()

    @app.post("/api/runs/{run_id}/pause")
    async def pause(run_id: str) -> dict[str, Any]:
        return (await control.run(manager.pause, run_id)).summary()

    @app.post("/api/runs/{run_id}/step")
    async def step(run_id: str) -> dict[str, Any]:
        return (await control.run(manager.step, run_id)).summary()

    @app.post("/api/runs/{run_id}/reset", status_code=201)
    async def reset(run_id: str) -> dict[str, Any]:
        return (await control.run(manager.reset, run_id)).detail()

    # Files of a run are opened by `LabRun.open_file`: never through a symbolic link, never outside the run folder.

    @app.get("/api/runs/{run_id}/target.png")
    def run_target(run_id: str) -> Response:
        run = manager.get(run_id)
        return _png(pictures.show_target(_read_picture(run, TARGET), run.mode))

    @app.get("/api/runs/{run_id}/frames/{frame}")
    def frame(run_id: str, frame: str) -> Response:
        run = manager.get(run_id)
        m = _FRAME.fullmatch(frame)
        if m is None:
            raise LabError(404, f"run {run_id} has no frame {frame!r}")
        path = run.folder.frame_path(int(m.group(1)))
        return _png(pictures.show_frame(_read_picture(run, path.parent.name, path.name), run.mode))

    @app.get("/api/runs/{run_id}/download/{kind}")
    def download(run_id: str, kind: str) -> Response:
        run = manager.get(run_id)
        if kind not in DOWNLOADS:
            raise LabError(404, f"nothing to download called {kind!r}; choose from {', '.join(DOWNLOADS)}")
        file, media_type, _ = DOWNLOADS[kind]
        if file == CONFIG:  # rewritten: the picture's server path stays on the server
            return Response(run.config_download(), media_type=media_type,
                            headers={"Content-Disposition": f'attachment; filename="{run_id}-{file}"'})
        try:
            f = run.open_file(file)
        except LabError as e:
            if e.status == 404 and kind in AT_THE_END:
                raise LabError(404, f"run {run_id} has no {file} yet (it is written when training ends)") from None
            raise
        return _stream(f, media_type, f"{run_id}-{file}")

    # The network view reads the weights the recorder stored, in the read pool (plain routes run in
    # threads): never a training process's model, never the event loop.

    @app.get("/api/runs/{run_id}/network")
    def network(run_id: str, step: int | None = Query(None, ge=0), size: int = netview.TILE_SIDE) -> dict[str, Any]:
        return netview.network(manager.get(run_id), step, size)

    @app.get("/api/runs/{run_id}/network/unit")
    def network_unit(run_id: str, layer: int, unit: int, step: int | None = Query(None, ge=0)) -> dict[str, Any]:
        return netview.unit(manager.get(run_id), layer, unit, step)

    @app.get("/api/runs/{run_id}/batch")
    def training_batch(run_id: str, n: int = 1024) -> dict[str, Any]:
        return netview.batch(manager.get(run_id), n)


class ControlThreads:
    """Threads for requests that wait for a process (create, start, step, pause, reset), apart from the pool that serves reads.

    Every plain route runs in a thread of one shared pool (40 at once). A create holds its
    thread until the creates queued before it are made, a start until its process opens the
    run, so 40 of them waiting on a slow model would leave no thread for a GET. These requests draw on their own limit instead:
    however many of them wait, reads find a thread at once.
    """

    def __init__(self, threads: int = CONTROL_THREADS) -> None:
        self.threads = threads
        self._limiter: anyio.CapacityLimiter | None = None  # made on the server's event loop, at the first request

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args), limiter=self._limiter)


def _read_picture(run: LabRun, *parts: str) -> np.ndarray:
    """A PNG of the run folder, decoded; LabError 404 if missing or unreadable, 403 if it is a link."""
    with run.open_file(*parts) as f:
        try:
            return read_png(f)
        except (OSError, ValueError, SyntaxError):
            raise LabError(404, f"run {run.id}: {'/'.join(parts)} is not a readable PNG picture") from None


def _stream(f: BinaryIO, media_type: str, filename: str) -> Response:
    """An open file as a download, sent in chunks and closed when sent."""
    size = os.fstat(f.fileno()).st_size

    def chunks() -> Iterator[bytes]:
        with f:
            while chunk := f.read(_CHUNK_BYTES):
                yield chunk

    # Run ids and file names are plain folder names (letters, digits, '.', '_', '-'): safe inside the quotes.
    headers = {"Content-Length": str(size), "Content-Disposition": f'attachment; filename="{filename}"'}
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)


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
