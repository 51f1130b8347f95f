"""`overfit reproduce`: the six original presets on one target, their findings judged, a report written."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ..configio import parse_seeds
from ..errors import ConfigError
from ..fields import CHOICES
from ..reproduce import (DEFAULT_EVAL_EVERY, DEFAULT_EVAL_EVERY_LATE, DEFAULT_EVAL_LATE_FROM, DEFAULT_SEEDS, DEFAULT_STEPS, LOSSES,
                         MAX_RUNS, MAX_VARIANTS, REPRODUCE_PRESETS)
from .errors import reported
from .progress import Progress
from .target import load_target, target_options, target_overrides


@click.command("reproduce")
@click.option("--steps", type=click.IntRange(1), default=None, help=f"Most steps per run (default {DEFAULT_STEPS:,}, the original's); converged runs stop earlier.")
@click.option("--eval-every", type=click.IntRange(1), default=None, help=f"Evaluate every N steps up to step {DEFAULT_EVAL_LATE_FROM:,}, then every {DEFAULT_EVAL_EVERY_LATE:,} (default {DEFAULT_EVAL_EVERY}).")
@click.option("--seeds", "seeds_text", metavar="SEEDS", default=None,
              help=f"Seeds of every preset, for mean and spread, as train's --seeds: 0-7 or 0,3,5 (default {DEFAULT_SEEDS}).")
@target_options
@click.option("--variant", "variant_texts", multiple=True, metavar="KEY=V1,V2,...",
              help="Judge the findings under each of these values of a config field, by its dotted name as train takes it "
                   f"(loss=cross_entropy,double_softmax; model.init=original,torch; optim.lr=1e-4,1e-3). Repeat it for more "
                   f"fields: every combination trains (at most {MAX_VARIANTS}), all in one report.")
@click.option("--loss", type=click.Choice(LOSSES), default=None,
              help="Same as --variant loss=LOSS (default cross_entropy): double_softmax re-judges the findings with the original code's loss.")
@click.option("--init", type=click.Choice(CHOICES["model.init"]), default=None,
              help="Same as --variant model.init=INIT (default original): torch re-judges them with PyTorch's default initialisation.")
@click.option("--device", default="cpu", show_default=True, help="Torch device.")
@click.option("--compile/--no-compile", "compile_", default=True, show_default=True,
              help="torch.compile each run's step (falls back to eager where it cannot).")
@click.option("--tensorboard/--no-tensorboard", default=False, show_default=True,
              help="Also write TensorBoard events into each run folder (needs the tensorboard extra); then: tensorboard --logdir OUT.")
@click.option("--address", help="Train the runs on the Ray cluster at HOST:PORT or ray://HOST:PORT, a stack per worker "
                                "(OUT on a file system every node sees; default: in this process).")
@click.option("--out", type=click.Path(), help="Output folder (default reports/reproduce[-variant], reports/reproduce-variants for several).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def command(steps: int | None, eval_every: int | None, seeds_text: str | None, text: str | None, image: str | None,
            size: str | None, font_size: int | None, max_pixels: int | None, variant_texts: tuple[str, ...], loss: str | None,
            init: str | None, device: str, compile_: bool, tensorboard: bool, address: str | None, out: str | None, quiet: bool) -> None:
    """Run the six presets and judge the original experiment's findings.

    Trains relu_raw, relu_1, tanh_1, cos_1, cos_3 and bn_relu on the same target
    for each seed, then writes OUT/report/index.html (open it from disk) with
    the verdicts, a grid video, curves, spectral heatmaps and a table. With
    --variant, every combination of the values trains (all runs at once) into
    OUT/variants/KEY=VALUE,.../, and OUT/report compares the verdicts. Running
    the same command again resumes an interrupted reproduction.
    """
    from .. import reproduce as rp

    steps = steps or DEFAULT_STEPS
    eval_every = eval_every or min(DEFAULT_EVAL_EVERY, steps)
    overrides = {**target_overrides(text, image, size, font_size, max_pixels), **rp.BASE_SETTINGS, "device": device, "compile": compile_,
                 "tensorboard": tensorboard}
    shorthands = [*([f"loss={loss}"] if loss else []), *([f"model.init={init}"] if init else [])]
    with reported():
        # Everything is checked before anything is written.
        variants = rp.combinations(rp.parse_variants([*variant_texts, *shorthands], LOSSES))
        seeds = parse_seeds(seeds_text or DEFAULT_SEEDS)
        if tensorboard:
            from ..tensorboard import require

            require()
        count = len(seeds) * len(variants) * len(REPRODUCE_PRESETS)
        if count > MAX_RUNS:
            raise ConfigError(f"{len(seeds)} seed(s) x {len(variants)} variant(s) x {len(REPRODUCE_PRESETS)} presets is {count:,} runs, "
                              f"more than the {MAX_RUNS:,} a reproduction trains", field="seeds")
        out_dir = Path(out) if out else rp.default_out(variants)
        runs = rp.plan(overrides, steps, eval_every, seeds, variants=variants)
        target = load_target(runs[0].config.data)
        meta = rp.make_meta(target, steps, eval_every, seeds, "overfit reproduce " + " ".join(sys.argv[2:]))
        several = f" x {len(variants)} variants" if len(variants) > 1 else ""
        click.echo(f"Reproducing in {out_dir}: {len(REPRODUCE_PRESETS)} presets x {len(seeds)} seed(s){several}, up to {steps:,} steps "
                   "each (a run that has reached every threshold and learned every band stops early)", err=True)

        def make_callback(planned: Any, trainer: Any) -> Any:
            progress = Progress(trainer, quiet, desc=planned.label)

            def on_event(event: Any) -> None:
                progress(event)
                if event.kind in ("end", "interrupt"):
                    progress.close()
            return on_event

        # Ctrl-C stops every run at a checkpoint (`session.train_sessions`); the same command continues.
        results = rp.reproduce(out_dir, target, runs, meta, make_callback, lambda line: click.echo(line, err=True), address)
    if not results:
        click.echo("Interrupted; run the same command again to continue.", err=True)
        sys.exit(130)
    if "findings" in results:
        for f in results["findings"]:
            click.echo(f"{f['verdict']:<13} {f['id']}. {f['title']}")
            click.echo(f"{'':<13}    {f['sentence']}")
    else:  # several variants: each finding, then its verdict and sentence per variant
        for i, f in enumerate(results["variants"][0]["findings"]):
            click.echo(f"{f['id']}. {f['title']}")
            for variant in results["variants"]:
                judged = variant["findings"][i]
                click.echo(f"   {judged['verdict']:<13} {variant['name']}: {judged['sentence']}")
    click.echo(f"Report: {out_dir / 'report' / 'index.html'}")
