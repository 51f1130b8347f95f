"""Tests of the lab's app (`web.app`, `web.meta`): the page, what /api/meta serves, what is never served, and `overfit lab`."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from helpers import run_async
from web_client import create, lab, make_lab, refusal  # noqa: F401  (fixtures)

from overfit.config import RunConfig
from overfit.fields import describe_fields
from overfit.modes import MODES
from overfit.presets import PRESETS
from overfit.endings import Ending
from overfit.runs import NAME_PATTERN, RunFolder


def test_page_and_its_modules_are_served_and_fetch_nothing_from_the_network(lab):
    page = lab.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    static = Path(__file__).resolve().parents[1] / "src" / "overfit" / "web" / "static"
    files = sorted(p for p in static.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {"index.html", "style.css", "state.js", "views.js", "controller.js", "api.js", "charts.js"}
    for path in files:
        served = lab.get("/static/" + path.relative_to(static).as_posix())
        assert served.status_code == 200, path
        assert not re.search(r"https?://", served.text), f"{path.name} refers to the network"
        # Module imports are relative: no bare package names that would need a bundler.
        for spec in re.findall(r"""^import .* from ["']([^"']+)["']""", served.text, re.MULTILINE):
            assert spec.startswith("./"), (path.name, spec)


def test_meta_offers_every_config_field_and_preset(lab):
    meta = lab.get("/api/meta").json()
    assert [f["key"] for f in meta["fields"]] == [f.key for f in describe_fields()]
    by_key = {f["key"]: f for f in meta["fields"]}
    assert "relu" in by_key["model.activation"]["choices"] and by_key["model.hidden"]["type"] == "list of int"
    # Free text with suggestions (held-out pixels): offered to the page as they are, absent elsewhere.
    assert by_key["data.holdout"]["suggestions"] == ["none", "checkerboard", "0.1", "0.25", "0.5"]
    assert by_key["data.holdout"]["choices"] is None and by_key["model.activation"]["suggestions"] is None
    assert set(meta["presets"]) == set(PRESETS)
    assert meta["presets"]["cos_3"]["config"]["model"]["activation"] == "cos"
    assert len(meta["colour_map"]["stops"]) >= 2 and meta["limits"]["max_runs"] == 2


def test_meta_serves_the_mode_facts_and_defaults_the_page_would_otherwise_copy(lab):
    meta = lab.get("/api/meta").json()
    assert list(meta["modes"]) == list(MODES)
    for name, facts in meta["modes"].items():
        mode = MODES[name]
        assert (facts["headline"], facts["label"], facts["picture_channels"]) == (mode.headline, mode.headline_label, mode.picture_channels)
    assert meta["modes"]["binary"]["colour_mapped"] and not meta["modes"]["gray"]["colour_mapped"]
    assert meta["modes"]["binary"]["format"] == {"scale": 100, "digits": 1, "unit": "%", "bounds": [0, 1]}
    assert meta["modes"]["rgb"]["format"] == {"scale": 1, "digits": 2, "unit": "dB", "bounds": None}
    # Every metric a run can record, as the metric registry describes it: the page charts any of them.
    from overfit import metricinfo

    assert meta["metrics"] == metricinfo.served() and meta["metrics"]["test_psnr"]["label"] == "PSNR (the held-out pixels)"
    assert meta["modes"]["gray"]["test_headline"] == "test_psnr"
    assert meta["defaults"] == RunConfig().to_dict() and meta["default_preset"] in meta["presets"]
    # Form sections in order, the target's among them; each field belongs to one.
    keys = [s["key"] for s in meta["sections"]]
    assert keys == ["data", "model", "encoding", "optim", "schedule", ""]
    assert [s["key"] for s in meta["sections"] if s["target"]] == ["data"]
    assert {s["key"]: s["title"] for s in meta["sections"]}["optim"] == "optimizer"
    assert all(f["key"].partition(".")[0] in keys or "." not in f["key"] for f in meta["fields"])
    assert meta["patterns"]["run"] == NAME_PATTERN.pattern
    assert [d["kind"] for d in meta["downloads"]] == ["video", "gif", "final", "config", "checkpoint"]
    assert meta["limits"]["curve_points"] >= 100


@pytest.mark.parametrize("url", [
    "/api/runs/..%2F..%2Fetc%2Fpasswd",
    "/api/runs/%2E%2E",
    "/api/runs/.uploads",
    "/api/runs/run%00x",
    "/api/runs/r/download/..%2Fconfig.json",
    "/api/runs/r/download/config.json",
    "/api/runs/r/download/%2E%2E",
    "/api/runs/r/frames/..%2F..%2Fconfig.json",
    "/api/runs/r/frames/abc.png",
    "/api/runs/r/frames/7.png",
    "/api/runs/..%2Fr/target.png",
    "/api/runs/outside/download/config",
])
def test_paths_outside_a_run_are_never_served(lab, tmp_path, url):
    create(lab, name="r")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    (tmp_path / "runs" / "outside").symlink_to(outside)
    r = lab.get(url)
    assert r.status_code in (404, 405), (url, r.status_code, r.text)
    assert "preset" not in r.text and "root:" not in r.text


def test_files_of_a_run_are_never_served_through_a_link(lab, tmp_path):
    create(lab, name="r")
    folder, outside = tmp_path / "runs" / "r", tmp_path / "elsewhere"
    outside.mkdir()
    secret = outside / "passwd"
    secret.write_text("root:x:0:0:root:/root:/bin/bash\n")
    picture = outside / "picture.png"
    picture.write_bytes((folder / "target.png").read_bytes())
    (folder / "progress.gif").symlink_to(secret)
    (folder / "checkpoint.pt").symlink_to(secret)
    (folder / "frames").mkdir()
    (folder / "frames" / "00000100.png").symlink_to(picture)
    (folder / "target.png").unlink()
    (folder / "target.png").symlink_to(picture)
    for url in ("/api/runs/r/download/gif", "/api/runs/r/download/checkpoint", "/api/runs/r/frames/100.png", "/api/runs/r/target.png"):
        message = refusal(lab.get(url), 403)
        assert "symbolic link" in message and "root:" not in message, (url, message)
    assert lab.get("/api/runs/r").json()["files"] == {"video": False, "gif": False, "final": False, "config": True, "checkpoint": False}

    # A linked frames folder is refused as well, and so is a folder where a file should be.
    (folder / "frames" / "00000100.png").unlink()
    (folder / "frames").rmdir()
    (outside / "frames").mkdir()
    (outside / "frames" / "00000000.png").write_bytes(picture.read_bytes())
    (folder / "frames").symlink_to(outside / "frames")
    assert "symbolic link" in refusal(lab.get("/api/runs/r/frames/0.png"), 403)
    (folder / "final.png").mkdir()
    refusal(lab.get("/api/runs/r/download/final"), 403)
    assert lab.get("/api/runs/r/download/config").json()["data"]["text"] == "OV"  # plain files are still served


@pytest.mark.parametrize("relative_opens", [True, False], ids=["dir_fd", "lstat"])
def test_open_plain_file_refuses_every_link_on_the_way(tmp_path, monkeypatch, relative_opens):
    import os

    from overfit.web.labrun import NotPlainFile, open_plain_file

    if not relative_opens:  # the platforms without dir_fd (Windows) check each step with lstat instead
        monkeypatch.setattr(os, "supports_dir_fd", set())
    run, outside = tmp_path / "run", tmp_path / "outside"
    (run / "frames").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret").write_text("secret")
    (run / "frames" / "1.png").write_bytes(b"frame")
    (run / "link").symlink_to(outside / "secret")
    (run / "dirlink").symlink_to(outside)
    (tmp_path / "run-link").symlink_to(run)
    with open_plain_file(run, "frames", "1.png") as f:
        assert f.read() == b"frame"
    for folder, parts in ((run, ("link",)), (run, ("dirlink", "secret")), (tmp_path / "run-link", ("frames", "1.png")), (run, ("frames",))):
        with pytest.raises(NotPlainFile):
            open_plain_file(folder, *parts)
    with pytest.raises(FileNotFoundError):
        open_plain_file(run, "frames", "2.png")


# -- the command ----------------------------------------------------------------------------------------------

def test_lab_command_refuses_a_busy_port_in_one_line(tmp_path):
    from overfit.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["lab", "--port", str(port), "--no-browser", "--runs-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert f"Error: cannot listen on 127.0.0.1:{port}" in result.output and "--port" in result.output


def test_lab_command_prints_the_address_and_warns_off_loopback(tmp_path, monkeypatch):
    import uvicorn

    from overfit.cli import main

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append((self.config.app, sockets)))
    local = CliRunner().invoke(main, ["lab", "--port", "0", "--no-browser", "--runs-dir", str(tmp_path)])
    assert local.exit_code == 0, local.output
    # Loopback too: the address carries the token (any user or program of the machine reaches a loopback port).
    token = re.search(r"overfit lab: http://127\.0\.0\.1:\d+/\?token=([A-Za-z0-9_-]{43}) ", local.output).group(1)
    assert started[0][0].state.token == token and "Warning" not in local.output
    public = CliRunner().invoke(main, ["lab", "--host", "0.0.0.0", "--allow-host", "mybox.local", "--allow-host", "10.0.0.5",
                                       "--port", "0", "--no-browser", "--runs-dir", str(tmp_path)])
    assert public.exit_code == 0, public.output
    assert "Warning: listening on 0.0.0.0" in public.output and "mybox.local, 10.0.0.5" in public.output
    # As Jupyter does: the address carries the token, the one the app checks.
    token = re.search(r"overfit lab: http://mybox\.local:\d+/\?token=([A-Za-z0-9_-]{43}) ", public.output).group(1)
    assert started[1][0].state.token == token
    assert len(started) == 2
    for _, sockets in started:
        sockets[0].close()


def test_the_labs_connections_send_each_answer_at_once(tmp_path, monkeypatch):
    # TCP_NODELAY on every accepted connection (asyncio sets it only for a socket made as TCP): without it each
    # answer on a kept-alive connection waits for the client's delayed acknowledgement (~40 ms on Linux).
    import asyncio
    import socket

    import uvicorn

    from overfit.cli import main

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append(sockets[0]))
    assert CliRunner().invoke(main, ["lab", "--port", "0", "--no-browser", "--runs-dir", str(tmp_path)]).exit_code == 0
    listening = started[0]

    async def accept_one() -> int:
        accepted = asyncio.get_running_loop().create_future()

        class Protocol(asyncio.Protocol):
            def connection_made(self, transport):
                accepted.set_result(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

        server = await asyncio.get_running_loop().create_server(Protocol, sock=listening)
        reader, writer = await asyncio.open_connection(*listening.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, 30)
        finally:
            writer.close()
            server.close()

    assert run_async(accept_one()) != 0  # not asyncio.run: a browser test may have left a loop in this thread


def test_lab_command_serves_without_a_token_on_loopback_only_and_warns(tmp_path, monkeypatch):
    import uvicorn

    from overfit.cli import main

    started = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: started.append((self.config.app, sockets)))
    local = CliRunner().invoke(main, ["lab", "--no-token", "--port", "0", "--no-browser", "--runs-dir", str(tmp_path)])
    assert local.exit_code == 0, local.output
    assert re.search(r"overfit lab: http://127\.0\.0\.1:\d+/ ", local.output) and started[0][0].state.token is None
    assert [line for line in local.output.splitlines() if line.startswith("Warning")] == [
        "Warning: --no-token: any user or program of this machine can use this lab (start runs, upload, download)."]
    started[0][1][0].close()
    public = CliRunner().invoke(main, ["lab", "--no-token", "--host", "0.0.0.0", "--port", "0", "--no-browser",
                                       "--runs-dir", str(tmp_path)])
    assert public.exit_code == 1 and len(started) == 1
    assert public.output.strip() == "Error: --no-token: the lab listens on 0.0.0.0, which other machines reach; it needs its access token there"


def test_lab_command_refuses_an_allowed_host_that_is_not_a_name(tmp_path):
    from overfit.cli import main

    result = CliRunner().invoke(main, ["lab", "--host", "0.0.0.0", "--allow-host", "http://mybox.local/", "--port", "0",
                                       "--no-browser", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--allow-host" in result.output and "is not a host name" in result.output


def test_the_commands_defaults_are_the_labs():
    from overfit.cli import lab as command
    from overfit.web import manager, sockets

    assert (command.MAX_FOLDERS, command.MAX_VIEWERS) == (manager.MAX_FOLDERS, sockets.MAX_VIEWERS)


def test_the_headline_format_served_to_the_page_writes_what_format_headline_writes():
    from overfit.web.meta import headline_format

    for mode in MODES.values():
        f = headline_format(mode)
        for value in (0.0, 0.5, 0.98765, 31.4159, 100.0):
            assert f"{value * f['scale']:.{f['digits']}f} {f['unit']}" == mode.format_headline(value)


# -- no server path reaches the browser -------------------------------------------------------------------------

def test_a_downloaded_config_names_its_picture_relative_to_the_runs_folder(lab, tmp_path):
    from web_client import png_bytes

    up = lab.post("/api/uploads", content=png_bytes(np.full((24, 40), 200, np.uint8))).json()
    run = create(lab, {"schedule": {"steps": 10, "eval_every": 10}, "model": {"hidden": [8]}}, upload=up["id"])
    runs = tmp_path / "runs"
    assert json.loads((runs / run["id"] / "config.json").read_text())["data"]["image"].startswith(str(runs))  # on disk: as it is
    r = lab.get(f"/api/runs/{run['id']}/download/config")
    assert r.status_code == 200 and r.headers["content-disposition"] == f'attachment; filename="{run["id"]}-config.json"'
    # Before, the file went out as written, with the server's absolute path of the upload in it.
    assert r.json()["data"]["image"] == f".uploads/{up['id']}.png" and str(tmp_path) not in r.text
    assert RunConfig.from_dict(r.json()).model.hidden == (8,)  # still a config


def test_a_failed_runs_reason_names_no_server_path(lab, tmp_path):
    create(lab, name="r")
    folder = tmp_path / "runs" / "r"
    reason = f"cannot write {folder}/checkpoint.pt: disk full; see /home/someone/notes/log.txt"
    RunFolder(folder).write_ending(Ending("failed", 0, reason))
    shown = lab.get("/api/runs/r").json()["error"]
    # Before, the reason written into the folder reached the page as it was.
    assert shown == "cannot write r/checkpoint.pt: disk full; see log.txt"
    assert [r["error"] for r in lab.get("/api/runs").json()["runs"]] == [shown]
