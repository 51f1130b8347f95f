"""The lab's web app: HTTP and WebSocket routes over the run manager.

    GET  /                              the page (static/index.html)
    GET  /api/meta                      config fields, presets, colour map, limits
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
with a 4xx status, never a stack trace. Bound to loopback, only loopback Host headers
are served (a web page cannot reach the lab through DNS rebinding), and any request
that changes something, or opens a WebSocket, from a page of another origin is
refused (no cross-site request forgery).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketDisconnect

from ..config import CHOICES, MODES, ConfigError, RunConfig, describe_fields
from ..presets import DEFAULT_PRESET, PRESETS
from ..runs import FRAMES, TARGET
from . import pictures
from .errors import LabError, config_error
from .manager import DOWNLOADS, RunManager
from .stream import Hub, encode
from .uploads import MAX_LAB_PIXELS, MAX_UPLOAD_BYTES, UploadStore

log = logging.getLogger("overfit.lab")
STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
_FRAME = re.compile(r"^(\d{1,12})\.png$")
# A JSON body larger than this is not a config.
MAX_JSON_BYTES = 1 << 20


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: addresses no other machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
    allowed = set(LOOPBACK_NAMES) | {host} if is_loopback(host) else None
    app.add_middleware(_Guard, allowed_hosts=allowed)

    _error_handlers(app)
    _page_routes(app, uploads, manager)
    _run_routes(app, manager, uploads)
    _picture_routes(app, uploads)
    _live_route(app, manager, hub)
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

    meta_cache: dict[str, Any] = {}

    @app.get("/api/meta")
    def meta() -> dict[str, Any]:
        if not meta_cache:  # describe_fields reads the config's source for its docstrings: once is enough
            meta_cache.update({
                "fields": [dataclasses.asdict(f) for f in describe_fields()],
                "choices": {k: list(v) for k, v in CHOICES.items()},
                "modes": list(MODES),
                "presets": {name: {"description": p.description, "config": p.config.to_dict()} for name, p in PRESETS.items()},
                "default_preset": DEFAULT_PRESET,
                "colour_map": {"name": pictures.COLOUR_MAP, "stops": pictures.colour_stops()},
                "limits": {"upload_bytes": uploads.max_bytes, "pixels": uploads.max_pixels, "max_runs": manager.max_runs},
            })
        return meta_cache


def _run_routes(app: FastAPI, manager: RunManager, uploads: UploadStore) -> None:
    """Listing, creating and controlling runs, and their pictures and files."""

    @app.get("/api/runs")
    def list_runs() -> dict[str, Any]:
        running = len(manager.running())
        return {"runs": manager.list(), "running": running, "max_runs": manager.max_runs}

    @app.post("/api/runs", status_code=201)
    async def create_run(request: Request) -> dict[str, Any]:
        body = await _json_body(request)
        cfg, name = _lab_config(body, uploads)
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
            picture = pictures.read_png(run.path / TARGET)
        except OSError:
            raise LabError(404, f"run {run_id} has no target picture") from None
        return _png(pictures.show_target(picture, run.cfg.data.mode))

    @app.get("/api/runs/{run_id}/frames/{frame}")
    def frame(run_id: str, frame: str) -> Response:
        run = manager.get(run_id)
        m = _FRAME.match(frame)
        path = run.path / FRAMES / f"{int(m.group(1)):08d}.png" if m else None
        if path is None or not path.is_file():
            raise LabError(404, f"run {run_id} has no frame {frame!r}")
        return _png(pictures.show_frame(pictures.read_png(path), run.cfg.data.mode))

    @app.get("/api/runs/{run_id}/download/{kind}")
    def download(run_id: str, kind: str) -> FileResponse:
        run = manager.get(run_id)
        if kind not in DOWNLOADS:
            raise LabError(404, f"nothing to download called {kind!r}; choose from {', '.join(DOWNLOADS)}")
        file, media_type = DOWNLOADS[kind]
        path = run.path / file
        if not path.is_file():
            raise LabError(404, f"run {run_id} has no {file} yet" + (" (it is written when training ends)" if kind in ("video", "gif", "final") else ""))
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
                       font_size: int | None = None, mode: str = "binary", upload: str | None = None) -> Response:
        """What a run would fit, before it exists: the same validation as a new run."""
        data: dict[str, Any] = {"mode": mode}
        for key, value in (("text", text), ("width", width), ("height", height), ("font_size", font_size)):
            if value is not None:
                data[key] = value
        cfg, _ = _lab_config({"config": {"data": data}, "upload": upload}, uploads)
        return _png(pictures.show_target(_target_picture(cfg), cfg.data.mode))


def _live_route(app: FastAPI, manager: RunManager, hub: Hub) -> None:
    """Snapshot, then ticks, previews, evaluations and status changes as they happen."""

    @app.websocket("/api/runs/{run_id}/live")
    async def live(ws: WebSocket, run_id: str) -> None:
        try:
            run = await run_in_threadpool(manager.get, run_id)
        except LabError:
            await ws.close(code=4404)
            return
        await ws.accept()
        hub.attach(asyncio.get_running_loop())
        box = hub.subscribe(run_id)
        try:
            await ws.send_text(encode({"type": "snapshot", "run": await run_in_threadpool(run.detail)}))

            async def pump() -> None:
                while True:
                    behind, messages = await box.take()
                    if behind:  # missed messages: start over from the current state
                        await ws.send_text(encode({"type": "snapshot", "run": await run_in_threadpool(run.detail)}))
                    for text in messages:
                        await ws.send_text(text)

            async def until_closed() -> None:
                while (await ws.receive())["type"] != "websocket.disconnect":
                    pass  # the page sends nothing; control goes through the HTTP routes

            tasks = [asyncio.create_task(pump()), asyncio.create_task(until_closed())]
            done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                if task.exception() and not isinstance(task.exception(), (WebSocketDisconnect, RuntimeError)):
                    log.warning("live stream of %s ended: %r", run_id, task.exception())
        except (WebSocketDisconnect, RuntimeError):
            pass  # the tab went away mid-send
        finally:
            hub.unsubscribe(box)



# -- helpers ----------------------------------------------------------------------------------------

def _png(picture: np.ndarray) -> Response:
    return Response(pictures.png(picture), media_type="image/png", headers={"Cache-Control": "no-cache"})


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise LabError(413, "request body too large for a config", field="body")
    try:
        body = json.loads(raw or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise LabError(422, f"not valid JSON: {e}", field="body") from None
    if not isinstance(body, dict):
        raise LabError(422, "expected a JSON object like {\"config\": {...}}", field="body")
    return body


def _lab_config(body: dict[str, Any], uploads: UploadStore) -> tuple[RunConfig, str | None]:
    """The RunConfig a request asks for, validated as the CLI validates it, plus the lab's own rules."""
    unknown = sorted(set(body) - {"config", "upload", "name"})
    if unknown:
        raise LabError(422, "unknown request key (known: config, upload, name)", field=unknown[0])
    try:
        cfg = RunConfig.from_dict(body.get("config", {}))
    except ConfigError as e:
        raise config_error(e) from None
    if cfg.data.image is not None:
        raise LabError(422, "the lab takes pictures by upload only; send the upload's id as \"upload\"", field="data.image")
    upload = body.get("upload")
    if upload is not None:
        path = uploads.path(upload)
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, image=str(path)))
    elif cfg.data.width * cfg.data.height > uploads.max_pixels:
        raise LabError(422, f"{cfg.data.width} x {cfg.data.height} is larger than the lab's limit of {uploads.max_pixels:,} pixels",
                       field="data.width")
    name = body.get("name")
    if name is not None and not isinstance(name, str):
        raise LabError(422, f"expected a string, got {name!r}", field="name")
    return cfg, name or None


def _target_picture(cfg: RunConfig) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) of the picture `cfg.data` names (text, or an already checked upload)."""
    from PIL import Image

    from ..targets import TargetError, render_text

    data = cfg.data
    if data.image is None:
        try:
            return render_text(data.text, data.width, data.height, data.font_size)
        except TargetError as e:
            raise LabError(422, str(e), field="data.text") from None
    with Image.open(data.image) as img:  # checked when it was uploaded
        img.thumbnail((1024, 1024))
        return np.asarray(img.convert("RGB" if data.mode == "rgb" else "L"))


class _Guard:
    """ASGI middleware: only expected Host headers; nothing that changes state from another origin."""

    def __init__(self, app: Any, allowed_hosts: set[str] | None) -> None:
        self.app = app
        self.allowed = allowed_hosts

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        hostname = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
        if self.allowed is not None and hostname not in self.allowed:
            return await self._refuse(scope, receive, send, 421, f"this lab answers only to {', '.join(sorted(self.allowed))}, not {host!r}")
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method") not in ("GET", "HEAD", "OPTIONS")
        if changes and origin is not None and origin.split("://", 1)[-1] != host:
            return await self._refuse(scope, receive, send, 403, f"requests from pages of another origin ({origin}) are refused")
        await self.app(scope, receive, send)

    async def _refuse(self, scope: dict, receive: Any, send: Any, status: int, message: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 4403})
            return
        await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
