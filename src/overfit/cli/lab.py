"""`overfit lab`: serve the live lab (web/) on a local port and open it in a browser tab."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import fail, reported


@click.command("lab")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but loopback lets other machines in, and the lab has no login.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port to listen on (0: any free port).")
@click.option("--runs-dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Where run folders go, and where existing runs are listed from.")
@click.option("--no-browser", is_flag=True, help="Only print the address; do not open a browser tab.")
@click.option("--max-runs", type=click.IntRange(1), default=None, help="Most runs training at once (default: the number of CPU cores).")
def command(host: str, port: int, runs_dir: str, no_browser: bool, max_runs: int | None) -> None:
    """Start the live lab: fit pictures in the browser and watch training happen.

    Pick a target and presets, press Start, and watch the prediction, the curves and
    up to four runs side by side. Runs are ordinary run folders in --runs-dir
    (continue one with `overfit train --resume runs/NAME`); closing the tab does not
    stop them. Ctrl-C stops the lab and pauses running runs at a checkpoint.
    """
    import errno
    import socket
    import threading
    import webbrowser

    import uvicorn

    from ..web.app import create_app, is_loopback

    # Bind here, before anything is printed, so a busy port is one clear error line.
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except socket.gaierror as e:
        raise fail(f"--host: cannot resolve {host!r}: {e.strerror or e}") from None
    except OSError as e:
        hint = "; another program uses it, choose another with --port" if e.errno == errno.EADDRINUSE else ""
        raise fail(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}") from None
    port = sock.getsockname()[1]
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else (f"[{host}]" if ":" in host else host)
    url = f"http://{local}:{port}/"
    if not is_loopback(host):
        click.echo(f"Warning: listening on {host}, so other machines can reach this lab. It has no login: anyone who "
                   "can connect can start training and upload pictures. Use the default --host 127.0.0.1 unless you "
                   "mean that.", err=True)
    with reported():
        app = create_app(runs_dir, max_runs=max_runs, host=host)
    click.echo(f"overfit lab: {url}   (runs in {Path(runs_dir).resolve()}; Ctrl-C to stop)")
    if not no_browser:
        threading.Timer(0.5, lambda: webbrowser.open(url)).start()
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    server.run(sockets=[sock])
