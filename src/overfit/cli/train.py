"""`overfit train`: fit a picture into a new run folder, or continue one with --resume.

Every option maps onto a `RunConfig` field, and any field can also be set by its dotted
name (`--model.init torch`, `--schedule.log_every=50`). Runs start and resume through
`session.Session`; this module adds the options, the progress bar and the words.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..config import RunConfig
from ..errors import AllocationError, ConfigError, RunFolderError, TrainingDiverged
from ..fields import CHOICES, field_docs
from ..presets import DEFAULT_PRESET, get_preset
from .errors import fail, flag, message, reported, warnings_as_lines
from .progress import Progress
from .target import target_options, target_overrides

# The options below and the config field each one sets.
OPTION_FIELDS = {
    "steps": "schedule.steps",
    "eval_every": "schedule.eval_every",
    "batch_size": "optim.batch_size",
    "lr": "optim.lr",
    "seed": "seed",
    "activation": "model.activation",
    "input_range": "model.input_range",
    "batchnorm": "model.batchnorm",
    "hidden": "model.hidden",
    "init": "model.init",
    "loss": "loss",
    "mode": "data.mode",
    "holdout": "data.holdout",
    "encoding": "encoding.kind",
    "device": "device",
    "compile_": "compile",
    "precision": "precision",
}


def _dotted_help() -> str:
    lines = ["Every config field can be set by its dotted name, e.g. --model.init torch:", "", "\b"]
    for key, (tp, default) in field_docs().items():
        lines.append(f"  --{key} ({tp}, default {default})")
    return "\n".join(lines)


def parse_rest(rest: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """Split the free arguments into the preset names and dotted overrides."""
    top_level = {key for key in field_docs() if "." not in key}  # seed, loss, device, ...: set without a section
    presets: list[str] = []
    overrides: dict[str, str] = {}
    i = 0
    while i < len(rest):
        token = rest[i]
        if token.startswith("--"):
            key, eq, value = token[2:].partition("=")
            if "." not in key and key not in top_level:
                raise click.UsageError(f"no such option: {token}")
            if not eq:
                if i + 1 >= len(rest):
                    raise click.UsageError(f"option {token} needs a value")
                value = rest[i + 1]
                i += 1
            overrides[key.replace("-", "_")] = value
        elif token.startswith("-") and len(token) > 1 and not _is_number(token):
            raise click.UsageError(f"no such option: {token}")
        else:
            presets.append(token)
        i += 1
    return presets, overrides


def parse_seeds(text: str) -> list[int]:
    """Seeds from '0-7', '0,3,5', '2' or a mix ('0-3,8'): in order, without repeats."""
    seeds: list[int] = []
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not (low.isdigit() and (not dash or high.isdigit())):
            raise click.BadParameter(f"expected seeds like 0-7 or 0,3,5, got {text!r}", param_hint="--seeds")
        first, last = int(low), int(high) if dash else int(low)
        if last < first or last - first >= MAX_RUNS:
            raise click.BadParameter(f"{part!r} is not a range of at most {MAX_RUNS} seeds", param_hint="--seeds")
        seeds += [s for s in range(first, last + 1) if s not in seeds]
    return seeds


# Most runs one command trains at once (each has its own run folder and progress bar).
MAX_RUNS = 1024


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@click.command(
    "train",
    context_settings={"ignore_unknown_options": True, "allow_extra_args": False},
    epilog=_dotted_help(),
)
@click.argument("rest", nargs=-1, type=click.UNPROCESSED, metavar="[PRESET]... [--section.field VALUE]...")
@target_options
@click.option("--steps", type=int, help="Training steps (default 100000).")
@click.option("--batch-size", type=int, help="Coordinates per step (default 1024).")
@click.option("--lr", type=float, help="Adam learning rate (default 1e-4).")
@click.option("--eval-every", type=int, help="Evaluate every N steps (default 2000).")
@click.option("--seed", type=int, help="Random seed (default 0).")
@click.option("--activation", type=click.Choice(CHOICES["model.activation"]), help="Hidden-layer activation.")
@click.option("--input-range", metavar="none|R", help="Scale (y, x) to [-R, R], or 'none' for raw pixel units.")
@click.option("--batchnorm/--no-batchnorm", default=None, help="BatchNorm after each hidden Linear.")
@click.option("--hidden", metavar="W1,W2,...", help="Hidden widths (default 64,256,64).")
@click.option("--init", type=click.Choice(CHOICES["model.init"]), help="Weight init: original (MegEngine's) or torch.")
@click.option("--loss", type=click.Choice(CHOICES["loss"]), help="auto (default: cross_entropy for binary, mse otherwise), cross_entropy, double_softmax (the original code's) or mse.")
@click.option("--mode", type=click.Choice(CHOICES["data.mode"]), help="binary (ink or background, the default), gray or rgb (fit pixel values).")
@click.option("--holdout", metavar="none|checkerboard|F",
              help="Hold pixels out of training and score them apart: checkerboard (Tancik et al. 2020's protocol) or a fraction F at random, e.g. 0.25.")
@click.option("--encoding", type=click.Choice(CHOICES["encoding.kind"]), help="Input encoding: none (default), fourier, positional, grid.")
@click.option("--device", help="Torch device: cpu (default), cuda, mps.")
@click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the step: faster after a few seconds of compiling.")
@click.option("--precision", type=click.Choice(CHOICES["precision"]), help="fp32 (default) or bf16 matmuls (where the device has native bf16).")
@click.option("--seeds", "seeds_text", metavar="SEEDS", help="Train one run per seed, e.g. 0-7 or 0,3,5; runs of one shape train stacked, as one.")
@click.option("--config", "config_path", type=click.Path(), help="Start from this config.json instead of a preset.")
@click.option("--name", help="Run folder name (default: PRESET-YYYYmmdd-HHMMSS).")
@click.option("--runs-dir", type=click.Path(), default="runs", show_default=True, help="Where run folders go.")
@click.option("--resume", "resume_path", type=click.Path(), help="Continue the run in this folder (only --steps, --device and --compile may change).")
@click.option("--max-memory", "max_memory_text", metavar="SIZE",
              help="Memory a run may take by its estimate, e.g. 32GB or 500MB (default: half the available memory).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar; print only the result.")
def command(rest: tuple[str, ...], text: str | None, image: str | None, size: str | None, font_size: int | None,
            max_pixels: int | None, config_path: str | None, name: str | None, runs_dir: str,
            resume_path: str | None, max_memory_text: str | None, quiet: bool, seeds_text: str | None, **options: Any) -> None:
    """Fit a picture: PRESET (default relu_1) on the built-in OVERFIT, or --text / --image.

    Several presets, --seeds, or both train many runs at once, one run folder each;
    runs of one shape are stacked and stepped together (see `overfit.stacked`).

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
    presets, overrides = parse_rest(rest)
    seeds = parse_seeds(seeds_text) if seeds_text is not None else None
    for key, value in options.items():
        if value is not None:
            overrides[OPTION_FIELDS[key]] = str(value).lower() if isinstance(value, bool) else str(value)
    overrides.update(target_overrides(text, image, size, font_size, max_pixels))

    with reported():
        max_memory = parse_size(max_memory_text) if max_memory_text is not None else None
        if resume_path is not None:
            if presets or seeds is not None:
                raise click.UsageError("--resume continues a run with its own config; drop the PRESET and --seeds arguments")
            _resume(resume_path, overrides, quiet, max_memory)
        elif len(presets) > 1 or seeds is not None:
            if config_path is not None and presets:
                raise click.UsageError("give either PRESETs or --config, not both")
            if "seed" in overrides and seeds is not None:
                raise click.UsageError("give either --seed or --seeds, not both")
            configs = [build_config(p, config_path, {**overrides, **({"seed": str(s)} if s is not None else {})})
                       for p in (presets or [None]) for s in (seeds or [None])]
            if len(configs) > MAX_RUNS:
                raise click.UsageError(f"{len(configs)} runs at once is more than {MAX_RUNS}")
            from .many import train_many_new

            train_many_new(configs, runs_dir, name, quiet, max_memory)
        else:
            cfg = build_config(presets[0] if presets else None, config_path, overrides)
            _train_new(cfg, runs_dir, name, quiet, max_memory)


def build_config(preset_name: str | None, config_path: str | None, overrides: dict[str, str]) -> RunConfig:
    """The run's config: a preset (or a config.json) with the command line's dotted overrides."""
    if config_path is not None:
        if preset_name is not None:
            raise click.UsageError("give either a PRESET or --config, not both")
        path = Path(config_path)
        if not path.is_file():
            raise fail(f"config file not found: {path}")
        try:
            cfg = RunConfig.from_json(path.read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise fail(f"cannot read config file {path}: {e}") from None
        except ConfigError as e:
            raise fail(f"{path}: {e}") from None  # the key as written in the file
    else:
        cfg = get_preset(preset_name or DEFAULT_PRESET)
    return cfg.with_overrides(overrides)


def parse_size(text: str) -> int:
    """--max-memory's bytes ('32GB', '500MB', a number of bytes); a bad value is a ConfigError for --max-memory."""
    from ..budget import parse_size as parse

    return parse(text, field="max_memory")


def _train_new(cfg: RunConfig, runs_dir: str, name: str | None, quiet: bool, max_memory: int | None = None) -> None:
    from ..session import Session

    # Bad input, and a run over its memory budget, fail here, before any folder is made;
    # the picture's warnings (nothing to learn) print as Warning: lines.
    with warnings_as_lines():
        session = Session.start(cfg, runs_dir, name, max_memory=max_memory)
    with session:
        run(session, quiet)


def _resume(path: str, overrides: dict[str, str], quiet: bool, max_memory: int | None = None) -> None:
    from ..session import RESUMABLE, Session

    try:
        session = Session.resume(path, overrides, max_memory=max_memory)
    except RunFolderError as e:
        if e.field in overrides and e.field not in RESUMABLE:
            can = ", ".join(flag(key) for key in RESUMABLE[:-1]) + f" and {flag(RESUMABLE[-1])}"
            raise fail(f"--resume keeps the run's config; {e.field} cannot change (only {can} can). "
                       f"Start a new run from it with: overfit train --config {Path(path) / 'config.json'} ...") from None
        raise
    with session:
        if not quiet:
            click.echo(f"Resuming {session.path} at step {session.trainer.step:,} of {session.trainer.cfg.schedule.steps:,}", err=True)
        run(session, quiet)


def run(session: Any, quiet: bool) -> None:
    """Train the session to its end with a progress bar; Ctrl-C stops at a checkpoint (exit 130)."""
    trainer = session.trainer
    progress = Progress(trainer, quiet)
    # Ctrl-C asks the loop to stop after the current step; the checkpoint is saved there.
    previous = signal.signal(signal.SIGINT, lambda signum, frame: trainer.request_stop())
    started = time.perf_counter()
    try:
        result = session.run([progress])
    except TrainingDiverged as e:
        progress.close()
        last = trainer.history[-1]["step"] if trainer.history else None
        kept = f"; the last good checkpoint (step {last:,}) is kept in {session.path}" if last is not None and session.folder.has_checkpoint() else ""
        raise fail(message(e) + kept) from None
    except AllocationError as e:  # a new run without a checkpoint has been removed (Session.run)
        progress.close()
        kept = f"; the checkpoint is kept in {session.path}" if session.folder.has_checkpoint() else ""
        raise fail(message(e) + kept) from None
    finally:
        signal.signal(signal.SIGINT, previous)
        progress.close()

    if result.interrupted:
        click.echo(f"Interrupted at step {result.step:,}; checkpoint saved. Continue with: overfit train --resume {session.path}", err=True)
        sys.exit(130)
    click.echo(f"{session.path}: {trainer.mode.summary(result.history[-1])} after {result.step:,} steps "
               f"({trainer.train_seconds:.1f} s training, {time.perf_counter() - started:.0f} s in all)")
