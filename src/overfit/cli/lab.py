"""`overfit lab`: serve the live lab (web/) on a local port and open it in a browser tab."""

from __future__ import annotations

from pathlib import Path

import click

from ..limits import most
from .errors import fail, reported

# The web layer's defaults, from the limit table, so `overfit lab --help` does not import the web layer (FastAPI, torch).
MAX_FOLDERS, MAX_VIEWERS = most("folders"), most("viewers")


def _host_names(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    from ..web.guard import host_name

    try:
        return tuple(host_name(v) for v in values)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


@click.command("lab")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets other machines in: every request then needs "
                   "the access token printed in the address.")
@click.option("--allow-host", "allow_hosts", multiple=True, metavar="NAME", callback=_host_names,
              help="A host name or address other machines use to reach the lab (repeatable). Requests addressed "
                   "to any other name are refused (DNS rebinding); loopback names and --host are always allowed.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where run folders go, and where existing runs are listed from.")
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser tab.")
@click.option("--max-runs", type=click.IntRange(1), default=None, help="Most runs training at once (default: the number of CPU cores).")
@click.option("--max-folders", type=click.IntRange(1), default=MAX_FOLDERS, show_default=True,
              help="Most run folders in --runs-dir: the lab refuses to make more.")
@click.option("--max-viewers", type=click.IntRange(1), default=MAX_VIEWERS, show_default=True,
              help="Most live views of one run at once (browser tabs showing it).")
@click.option("--no-token", is_flag=True,
              help="Serve without the access token, on loopback only: any user or program of this machine may then "
                   "start runs, upload and download.")
def command(host: str, allow_hosts: tuple[str, ...], port: int, runs_dir: str, no_browser: bool, max_runs: int | None,
            max_folders: int, max_viewers: int, no_token: bool) -> None:
    """Start the live lab: fit pictures in the browser and watch training happen.

    Pick a target and presets, press Start, and watch the prediction, the curves and
    up to four runs side by side. Runs are ordinary run folders in --runs-dir
    (continue one with `overfit train --resume runs/NAME`); closing the tab does not
    stop them. Ctrl-C stops the lab and pauses running runs at a checkpoint.

    The printed address carries a random access token (a new one each start), as
    Jupyter's does: open it, and the browser keeps the token; every request without it is
    refused. On loopback (the default) only this machine can connect; with --host 0.0.0.0
    other machines can, and only the names given with --allow-host are served.
    """
    import errno
    import socket
    import threading
    import webbrowser

    import uvicorn

    from ..web.app import create_app, is_loopback

    if no_token and not is_loopback(host):
        raise fail(f"--no-token: the lab listens on {host}, which other machines reach; it needs its access token there")
    # Bind here, before anything is printed, so a busy port is one clear error line.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, proto, _, address = infos[0]
        # The protocol named (TCP), not 0: asyncio sets TCP_NODELAY only on connections of a TCP socket, and without it
        # every answer on a kept-alive connection waits ~40 ms for the browser's delayed acknowledgement.
        sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except socket.gaierror as e:
        raise fail(f"--host: cannot resolve {host!r}: {e.strerror or e}") from None
    except OSError as e:
        hint = "; another program uses it, choose another with --port" if e.errno == errno.EADDRINUSE else ""
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
    port = sock.getsockname()[1]
    with reported():
        app = create_app(runs_dir, max_runs=max_runs, host=host, allow_hosts=allow_hosts, max_folders=max_folders,
                         max_viewers=max_viewers, no_token=no_token)
    token = app.state.token
    query = f"?token={token}" if token else ""

    def address(name: str) -> str:
        return f"http://{f'[{name}]' if ':' in name else name}:{port}/{query}"

    local = address("127.0.0.1" if host in ("0.0.0.0", "::", "") else host)
    if no_token:
        click.echo("Warning: --no-token: any user or program of this machine can use this lab (start runs, upload, download).",
                   err=True)
    if not is_loopback(host):
        names = ", ".join(allow_hosts) if allow_hosts else "none besides this machine's own (add them with --allow-host NAME)"
        click.echo(f"Warning: listening on {host}, so other machines can reach this lab. Anyone with the address below "
                   f"(it holds the access token) can start training and upload pictures; names served to others: {names}.",
                   err=True)
    shown = address(allow_hosts[0]) if allow_hosts and not is_loopback(host) else local
    click.echo(f"overfit lab: {shown}   (runs in {Path(runs_dir).resolve()}; Ctrl-C to stop)")
    if not no_browser:
        threading.Timer(0.5, lambda: webbrowser.open(local)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
