"""`overfit train`: fit a picture into a new run folder, or continue one with --resume.

Every option maps onto a `RunConfig` field, and any field can also be set by its dotted
name (`--model.init torch`, `--schedule.log_every=50`): the options and their parsing
are `cli.options`, shared with `overfit sweep`. Runs start and resume through
`session.Session`; this module adds the run options, the progress bar and the words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ..config import RESUMABLE, RunConfig
from ..errors import RunFolderError
from .errors import fail, flag, reported, warnings_as_lines
from .lifecycle import run_name, train_and_report
from .options import build_config, config_options, dotted_help, parse_size, read_command_line

# Most runs one command trains at once (each has its own run folder and progress bar).
MAX_RUNS = 1024
# The flags a resume may change, for its help and its refusals: "--steps, --device, ... and --tensorboard".
_RESUMABLE_FLAGS = ", ".join(flag(key) for key in RESUMABLE[:-1]) + f" and {flag(RESUMABLE[-1])}"


@click.command(
    "train",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": False},
    epilog=dotted_help(),
)
@click.argument("rest", nargs=-1, type=click.UNPROCESSED, metavar="[PRESET]... [--section.field VALUE]...")
@config_options(seeds_help="Train one run per seed, e.g. 0-7 or 0,3,5; runs of one kind train stacked, as one.")
@click.option("--name", help="Run folder name (default: PRESET-YYYYmmdd-HHMMSS).")
@click.option("--runs-dir", type=click.Path(), default="runs", show_default=True, help="Where run folders go.")
@click.option("--resume", "resume_path", type=click.Path(), help=f"Continue the run in this folder (only {_RESUMABLE_FLAGS} may change).")
@click.option("--max-memory", "max_memory_text", metavar="SIZE",
              help="Memory a run may take by its estimate, e.g. 32GB or 500MB (default: half the available memory).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; print only the result.")
def command(rest: tuple[str, ...], config_path: str | None, name: str | None, runs_dir: str,
            resume_path: str | None, max_memory_text: str | None, quiet: bool, **options: Any) -> None:
    """Fit a picture: PRESET (default relu_1) on the built-in OVERFIT, or --text / --image.

    Several presets, --seeds, or both train many runs at once, one run folder each;
    runs of one kind are stacked and stepped together (see `overfit.stacked`).

    A run whose estimated memory (weights, Adam, activations, evaluation, picture,
    frames) is over half the available memory is refused before it starts; --max-memory
    sets another budget.

    \b
    Examples:
      overfit train                         # the original recipe on OVERFIT
      overfit train cos_3 --steps 20000
      overfit train --text "HELLO" --activation tanh
      overfit train fast                    # 99.9 % in about a second
      overfit train grid --mode rgb --image photo.jpg
      overfit train fourier --mode rgb --image photo.jpg --holdout checkerboard
      overfit train relu_1 --model.init torch --name relu_torch_init
      overfit train --resume runs/relu_1-20261127-120000
      overfit train relu_1 --seeds 0-7      # eight runs, stacked
      overfit train relu_1 tanh_1 cos_3 --seeds 0,1
    """
    line = read_command_line(rest, options)
    presets, overrides, seeds = line.presets, line.overrides, line.seeds

    with reported():
        max_memory = parse_size(max_memory_text) if max_memory_text is not None else None
        if resume_path is not None:
            if presets or seeds is not None:
                raise click.UsageError("--resume continues a run with its own config; drop the PRESET and --seeds arguments")
            _resume(resume_path, overrides, quiet, max_memory)
        elif len(presets) > 1 or seeds is not None:
            if config_path is not None and presets:
                raise click.UsageError("give either PRESETs or --config, not both")
            configs = [build_config(p, config_path, {**overrides, **({"seed": str(s)} if s is not None else {})})
                       for p in (presets or [None]) for s in (seeds or [None])]
            if len(configs) > MAX_RUNS:
                raise click.UsageError(f"{len(configs)} runs at once is more than {MAX_RUNS}")
            _train_new(configs, [run_name(cfg, name) for cfg in configs], runs_dir, quiet, max_memory)
        else:
            _train_new([build_config(presets[0] if presets else None, config_path, overrides)], [name], runs_dir, quiet, max_memory)


def _train_new(configs: list[RunConfig], names: list[str | None], runs_dir: str, quiet: bool, max_memory: int | None) -> None:
    """Start a run folder per config (all checked together, nothing left behind if one cannot start) and train them."""
    from ..session import start_sessions

    # Bad input, and runs over their memory budget together, fail here, before any folder is kept;
    # the picture's warnings (nothing to learn) print as Warning: lines.
    with warnings_as_lines():
        sessions = start_sessions(configs, runs_dir, names, max_memory)
    train_and_report(sessions, quiet)


def _resume(path: str, overrides: dict[str, str], quiet: bool, max_memory: int | None = None) -> None:
    from ..session import Session

    try:
        session = Session.resume(path, overrides, max_memory=max_memory)
    except RunFolderError as e:
        if e.field in overrides and e.field not in RESUMABLE:
            raise fail(f"--resume keeps the run's config; {e.field} cannot change (only {_RESUMABLE_FLAGS} can). "
                       f"Start a new run from it with: overfit train --config {Path(path) / 'config.json'} ...") from None
        raise
    if not quiet:
        click.echo(f"Resuming {session.path} at step {session.trainer.step:,} of {session.trainer.cfg.schedule.steps:,}", err=True)
    train_and_report([session], quiet)
