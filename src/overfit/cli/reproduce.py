"""`overfit reproduce`: the six original presets on one target, their findings judged, a report written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..configio import parse_seeds
from ..errors import ConfigError
from ..fields import CHOICES
from ..reproduce import DEFAULT_EVAL_EVERY, DEFAULT_EVAL_EVERY_LATE, DEFAULT_EVAL_LATE_FROM, DEFAULT_SEEDS, DEFAULT_STEPS, LOSSES, MAX_SEEDS
from .errors import reported
from .progress import Progress
from .target import load_target, target_options, target_overrides


@click.command("reproduce")
@click.option("--steps", type=click.IntRange(1), default=None, help=f"Most steps per run (default {DEFAULT_STEPS:,}, the original's); converged runs stop earlier.")
@click.option("--eval-every", type=click.IntRange(1), default=None, help=f"Evaluate every N steps up to step {DEFAULT_EVAL_LATE_FROM:,}, then every {DEFAULT_EVAL_EVERY_LATE:,} (default {DEFAULT_EVAL_EVERY}).")
@click.option("--seeds", "seeds_text", metavar="SEEDS", default=None,
              help=f"Seeds of every preset, for mean and spread, as train's --seeds: 0-7 or 0,3,5 (default {DEFAULT_SEEDS}).")
@target_options
@click.option("--loss", type=click.Choice(LOSSES), default="cross_entropy", show_default=True,
              help="double_softmax re-judges the findings with the original code's loss.")
@click.option("--init", type=click.Choice(CHOICES["model.init"]), default="original", show_default=True,
              help="torch re-judges them with PyTorch's default initialisation.")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option("--compile/--no-compile", "compile_", default=True, show_default=True,
              help="torch.compile each run's step (falls back to eager where it cannot).")
@click.option("--out", type=click.Path(), help="Output folder (default reports/reproduce[-variant]).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def command(steps: int | None, eval_every: int | None, seeds_text: str | None, text: str | None, image: str | None,
            size: str | None, font_size: int | None, max_pixels: int | None, loss: str, init: str, device: str,
            compile_: bool, out: str | None, quiet: bool) -> None:
    """Run the six presets and judge the original experiment's findings.

    Trains relu_raw, relu_1, tanh_1, cos_1, cos_3 and bn_relu on the same target
    for each seed, then writes OUT/report/index.html (open it from disk) with
    the verdicts, a grid video, curves, spectral heatmaps and a table. Running
    the same command again resumes an interrupted reproduction.
    """
    from .. import reproduce as rp

    steps = steps or DEFAULT_STEPS
    eval_every = eval_every or min(DEFAULT_EVAL_EVERY, steps)
    out_dir = Path(out) if out else rp.default_out(loss, init)
    overrides = {**target_overrides(text, image, size, font_size, max_pixels), "loss": loss, "model.init": init, "device": device,
                 "compile": compile_}
    with reported():
        seeds = parse_seeds(seeds_text or DEFAULT_SEEDS)
        if len(seeds) > MAX_SEEDS:
            raise ConfigError(f"{len(seeds)} seeds is more than the {MAX_SEEDS} a reproduction trains", field="seeds")
        runs = rp.plan(overrides, steps, eval_every, seeds)
        target = load_target(runs[0].config.data)
        meta = rp.make_meta(target, steps, eval_every, seeds, loss, init, "overfit reproduce " + " ".join(sys.argv[2:]))
        click.echo(f"Reproducing in {out_dir}: {len(rp.REPRODUCE_PRESETS)} presets x {len(seeds)} seed(s), up to {steps:,} steps each "
                   "(a run that has reached every threshold and learned every band stops early)", err=True)

        def make_callback(planned: Any, trainer: Any) -> Any:
            progress = Progress(trainer, quiet, desc=planned.name)

            def on_event(event: Any) -> None:
                progress(event)
                if event.kind in ("end", "interrupt"):
                    progress.close()
            return on_event

        # Ctrl-C stops every run at a checkpoint (`session.train_sessions`); the same command continues.
        results = rp.reproduce(out_dir, target, runs, meta, make_callback, lambda line: click.echo(line, err=True))
    if not results:
        click.echo("Interrupted; run the same command again to continue.", err=True)
        sys.exit(130)
    for f in results["findings"]:
        click.echo(f"{f['verdict']:<13} {f['id']}. {f['title']}")
        click.echo(f"{'':<13}    {f['sentence']}")
    click.echo(f"Report: {out_dir / 'report' / 'index.html'}")
