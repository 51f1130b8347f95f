"""`overfit tensorboard`: TensorBoard events for run folders trained without --tensorboard (`overfit.tensorboard.convert`)."""

from __future__ import annotations

import click

from .errors import reported


@click.command("tensorboard")
@click.argument("runs", nargs=-1, required=True, type=click.Path(), metavar="RUN...")
@click.option("--force", is_flag=True, help="Replace the TensorBoard events a run folder already holds.")
def command(runs: tuple[str, ...], force: bool) -> None:
    """Write TensorBoard events for run folders made without --tensorboard.

    Each RUN gets RUN/tensorboard/ with what its folder keeps: every number of metrics.jsonl
    as a scalar (metrics, layer statistics, band errors, steps/s from train_seconds), each
    frame as the prediction image, the target, the config as text and hparams, and weight
    histograms from the weights the run stored (at most 100 evaluations, none for models
    above a million parameters, in half precision). Gradient histograms cannot be
    recovered: a run folder keeps no gradients (the layers/*/grad_norm scalars remain).
    Then: tensorboard --logdir runs.

    \b
    Examples:
      overfit tensorboard runs/relu_1-20261201-120000
      overfit tensorboard runs/* --force
    """
    from ..tensorboard import TENSORBOARD, convert, convertible

    with reported():
        for run in runs:  # every folder checked before any is written
            convertible(run, force)
        for run in runs:
            counts = convert(run, force)
            click.echo(f"{click.format_filename(run)}/{TENSORBOARD}: {counts['evaluations']} evaluations, "
                       f"{counts['pictures']} pictures, weight histograms at {counts['weights']}")
