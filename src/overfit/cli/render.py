"""`overfit render`: draw a fitted run (a run folder or a safetensors export) at any size or zoom, as PNG."""

from __future__ import annotations

import time

import click

from .errors import reported


@click.command("render")
@click.argument("run", type=click.Path())
@click.option("--scale", type=float, help="Output size as a multiple of the region's size in pixels (default 1).")
@click.option("--width", "out_width", type=click.IntRange(1), help="Output width in pixels (height follows the aspect ratio unless given).")
@click.option("--height", "out_height", type=click.IntRange(1), help="Output height in pixels.")
@click.option("--region", nargs=4, type=float, metavar="Y0 Y1 X0 X1",
              help="Part of the picture to draw, in its pixel coordinates (y up from the bottom row, x from the left); default: all of it.")
@click.option("--mode", "render_mode", type=click.Choice(["probability", "class"]), default="probability", show_default=True,
              help="Binary runs: gray probability of background, or pure black and white classes.")
@click.option("--device", default="cpu", show_default=True, help="Torch device to evaluate on.")
@click.option("--backend", default="torch", show_default=True, metavar="torch|compiled|onnxruntime",
              help="Evaluate eagerly, with torch.compile (a few seconds to compile), or with onnxruntime (CPU).")
@click.option("-o", "--output", type=click.Path(), required=True, help="PNG file to write.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists (a run folder's own files never are).")
def command(run: str, scale: float | None, out_width: int | None, out_height: int | None,
            region: tuple[float, float, float, float] | None, render_mode: str, device: str, backend: str,
            output: str, force: bool) -> None:
    """Draw a fitted run at any size or zoom: the network is a continuous picture.

    \b
    Examples:
      overfit render runs/fast-20261127-120000 --scale 4 -o big.png
      overfit render runs/grid-... --width 4000 -o wide.png
      overfit render runs/relu_1-... --region 100 200 0 300 --scale 8 -o zoom.png
    """
    from pathlib import Path

    from .. import render as rd
    from ..errors import RenderError
    from ..inference import inference_backend
    from ..runs import check_new_output
    from ..loading import load
    from ..training import resolve_device

    with reported():
        rd.check_output(output)  # before loading anything
        check_new_output(Path(output), ".png", force, RenderError)
        dev = resolve_device(device)
        loaded = load(run, dev)
        area = rd.Region(*region) if region else rd.Region.whole(loaded.height, loaded.width)
        area.check()
        out_h, out_w = rd.output_size(loaded.height, loaded.width, area, scale, out_width, out_height, loaded.mode)
        rd.check_render_mode(loaded.mode, render_mode)
        network = inference_backend(loaded, backend, dev)
        started = time.perf_counter()
        values = rd.predict(network, loaded.mode, out_h, out_w, area, dev)
        rd.save_png(rd.render_image(values, loaded.mode, render_mode), output)
    seconds = time.perf_counter() - started
    click.echo(f"{output}: {out_w} x {out_h} pixels from {run} (step {loaded.step:,}) in {seconds:.1f} s "
               f"({out_w * out_h / 1e6 / max(seconds, 1e-9):.1f} megapixels/s)")
