"""`overfit inspect`: the network view of a run folder as a picture (`overfit.netview`)."""

from __future__ import annotations

from pathlib import Path

import click

from .errors import reported


@click.command("inspect")
@click.argument("run", type=click.Path())
@click.option("--step", type=click.IntRange(0), help="Show the weights stored at this step, or the last before it (default: the latest).")
@click.option("-o", "--output", type=click.Path(), required=True, help="PNG file to write.")
@click.option("--force", is_flag=True, help="Replace the output file if it exists (a run folder's own files never are).")
def command(run: str, step: int | None, output: str, force: bool) -> None:
    """Draw the network view of a run: every hidden unit's activation over the picture.

    One row of tiles per hidden layer, one tile per unit, on a blue-white-red scale centred
    on 0; dead units (a ReLU that is 0 on the whole picture) are framed in red, saturated
    ones (tanh or sigmoid pinned at an end) in orange. Runs store their weights at
    evaluations, so any evaluated step can be shown.

    \b
    Examples:
      overfit inspect runs/relu_raw-20261201-120000 -o net.png
      overfit inspect runs/relu_1-20261201-120000 --step 2000 -o early.png
    """
    from ..errors import RenderError
    from ..images import save_png
    from ..netview import describe, network_view
    from ..runs import check_new_output

    with reported():
        check_new_output(Path(output), ".png", force, RenderError)
        view = network_view(run, step)
        save_png(view.picture(), output)
    layers = ", ".join(f"layer {d['layer']}: {d['dead']} of {d['units']} dead" + (f", {d['saturated']} saturated" if d["saturated"] else "")
                       for d in describe(view))
    click.echo(f"{output}: step {view.step:,} of {run} ({layers})")
