"""From a command line to a `RunConfig`: the options `overfit train` and `overfit sweep` share, and their parsing.

    @config_options(seeds_help="...")          # picture, config-field, --seeds and --config options
    line = read_command_line(rest, options)    # presets, dotted overrides, seeds
    cfg = build_config(line.presets[0], config_path, line.overrides)

Every field option (`--steps`, `--lr`, ...) sets one config field (`OPTION_FIELDS`); any
field can also be set by its dotted name (`--model.init torch`, `--schedule.log_every=50`),
and a field that sits at the top of the config by its bare name (`--seed 3`). A free
argument is a preset name. `--seeds` takes one syntax everywhere (`configio.parse_seeds`):
0-7, 0,3,5, or a mix. Neither command imports the other; both import this module.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import click

from ..config import RunConfig
from ..configio import parse_seeds as parse_seed_list
from ..errors import DISTRIBUTION, ConfigError
from ..fields import CHOICES, field_docs
from ..presets import DEFAULT_PRESET, get_preset
from .errors import fail
from .target import target_options, target_overrides

# The field options and the config field each one sets.
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
    "tensorboard": "tensorboard",
}
# The picture options (`target.target_options`), by their parameter names.
PICTURE_OPTIONS = ("text", "image", "size", "font_size", "max_pixels")


def dotted_help() -> str:
    """The epilog listing every dotted field with its type and default."""
    lines = ["Every config field can be set by its dotted name, e.g. --model.init torch:", "", "\b"]
    for key, (tp, default) in field_docs().items():
        lines.append(f"  --{key} ({tp}, default {default})")
    return "\n".join(lines)


def config_options(seeds_help: str) -> Callable[[Any], Any]:
    """Add the picture options, the field options, --seeds (with this help) and --config to a command."""
    options = [
        click.option("--steps", type=int, help="Training steps (default 100000)."),
        click.option("--batch-size", type=int, help="Coordinates per step (default 1024)."),
        click.option("--lr", type=float, help="Adam learning rate (default 1e-4)."),
        click.option("--eval-every", type=int, help="Evaluate every N steps (default 2000)."),
        click.option("--seed", type=int, help="Random seed (default 0)."),
        click.option("--activation", type=click.Choice(CHOICES["model.activation"]), help="Hidden-layer activation."),
        click.option("--input-range", metavar="none|R", help="Scale (y, x) to [-R, R], or 'none' for raw pixel units."),
        click.option("--batchnorm/--no-batchnorm", default=None, help="BatchNorm after each hidden Linear."),
        click.option("--hidden", metavar="W1,W2,...", help="Hidden widths (default 64,256,64)."),
        click.option("--init", type=click.Choice(CHOICES["model.init"]), help="Weight init: original (MegEngine's) or torch."),
        click.option("--loss", type=click.Choice(CHOICES["loss"]),
                     help="auto (default: cross_entropy for binary, mse otherwise), cross_entropy, double_softmax (the original code's) or mse."),
        click.option("--mode", type=click.Choice(CHOICES["data.mode"]), help="binary (ink or background, the default), gray or rgb (fit pixel values)."),
        click.option("--holdout", metavar="none|checkerboard|F",
                     help="Hold pixels out of training and score them apart: checkerboard (Tancik et al. 2020's protocol) or a fraction F at random, e.g. 0.25."),
        click.option("--encoding", type=click.Choice(CHOICES["encoding.kind"]), help="Input encoding: none (default), fourier, positional, grid."),
        click.option("--device", help="Torch device: cpu (default), cuda, mps."),
        click.option("--compile/--no-compile", "compile_", default=None, help="torch.compile the step: faster after a few seconds of compiling."),
        click.option("--precision", type=click.Choice(CHOICES["precision"]), help="fp32 (default) or bf16 matmuls (where the device has native bf16)."),
        click.option("--tensorboard/--no-tensorboard", default=None,
                     help=f"Also write TensorBoard events into each run folder's tensorboard/ (pip install '{DISTRIBUTION}[tensorboard]'); "
                          "then: tensorboard --logdir runs."),
        click.option("--seeds", "seeds_text", metavar="SEEDS", help=seeds_help),
        click.option("--config", "config_path", type=click.Path(), help="Start from this config.json instead of a preset."),
    ]

    def decorate(f: Any) -> Any:
        for option in reversed(options):
            f = option(f)
        return target_options(f)

    return decorate


@dataclass(frozen=True)
class CommandLine:
    """What a command line asks of the config: presets, dotted overrides and seeds."""

    presets: list[str]
    overrides: dict[str, str]
    """Dotted key -> value as typed, from the dotted options, the field options and the picture options (in that order)."""
    seeds: list[int] | None
    """--seeds, or None when not given."""


def read_command_line(rest: tuple[str, ...], options: dict[str, Any]) -> CommandLine:
    """The free arguments `rest` and the values of `config_options`' options (by parameter name) as a `CommandLine`."""
    presets, overrides = parse_rest(rest)
    for key, field in OPTION_FIELDS.items():
        value = options.get(key)
        if value is not None:
            overrides[field] = str(value).lower() if isinstance(value, bool) else str(value)
    overrides.update(target_overrides(*(options.get(name) for name in PICTURE_OPTIONS)))
    seeds_text = options.get("seeds_text")
    seeds = parse_seeds(seeds_text) if seeds_text is not None else None
    if seeds is not None and "seed" in overrides:
        raise click.UsageError("give either --seed or --seeds, not both")
    return CommandLine(presets, overrides, seeds)


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
    """--seeds: '0-7', '0,3,5', '2' or a mix ('0-3,8'), in order, without repeats; a bad list is a click.BadParameter."""
    try:
        return parse_seed_list(text)
    except ConfigError as e:
        raise click.BadParameter(e.detail, param_hint="--seeds") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


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
    cfg = cfg.with_overrides(overrides)
    if cfg.tensorboard:
        from ..tensorboard import require

        require()  # a missing package is one line before any run starts
    return cfg


def parse_size(text: str) -> int:
    """--max-memory's bytes ('32GB', '500MB', a number of bytes); a bad value is a ConfigError for --max-memory."""
    from ..budget import parse_size as parse

    return parse(text, field="max_memory")
