"""`overfit export`: write a run's fitted network as pt2, ONNX, safetensors or a self-contained HTML viewer."""

from __future__ import annotations

import click

from .errors import reported


@click.command("export")
@click.argument("run", type=click.Path())
@click.option("--format", "-f", "fmt", required=True, metavar="pt2|onnx|safetensors|html",
              help="pt2 (torch.export), onnx (opset 18), safetensors (weights + config) or html (a zoomable viewer).")
@click.option("--output", "-o", type=click.Path(), help="Output file (default RUN/export/model.EXT).")
@click.option("--force", is_flag=True, help="Replace the output file if it exists (a run folder's own files never are).")
def command(run: str, fmt: str, output: str | None, force: bool) -> None:
    """Export the fitted network of run folder RUN, to serve it anywhere.

    Every format takes (N, 2) pixel coordinates (y, x) in the run's convention and gives
    P(background) for binary runs, or pixel values in [0, 1] for gray and rgb runs.
    The html file is a self-contained viewer: open it from disk, zoom with the wheel or
    a pinch, drag to pan; it evaluates the network on the GPU with WebGL2.

    \b
    Examples:
      overfit export runs/relu_1-20261127-120000 --format html
      overfit export runs/my_run -f onnx -o my_run.onnx
    """
    from ..export import export_run

    with reported():
        path = export_run(run, fmt.lower(), output, force=force)
    click.echo(f"{path} ({path.stat().st_size / 1024:,.0f} KiB)")
