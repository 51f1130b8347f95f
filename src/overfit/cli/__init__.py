"""The `overfit` command line: the group and its commands, each loaded only when it runs.

    overfit --help            lists the commands from the table below: no command module,
                              no torch, no matplotlib is imported
    overfit train fast        imports cli/train.py, and torch once training starts

One module per command (train, presets, reproduce, render, inspect, lab, export, sweep, tensorboard); `progress.py`
is the progress bar, `errors.py` the one place that words overfit's errors for a
terminal (`Error: --region: ...`), `target.py` the picture options that train and
reproduce share. Runs already on disk are never overwritten.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

from .. import __version__

# name -> (module in this package, its command's one-line help). The help is kept here so
# that `overfit --help` lists the commands without importing them; tests/test_cli_main.py
# checks that each line is the first sentence of its command's own help.
COMMANDS: dict[str, tuple[str, str]] = {
    "export": ("export", "Export the fitted network of run folder RUN, to serve it anywhere."),
    "inspect": ("inspect", "Draw the network view of a run: every hidden unit's activation over the picture."),
    "lab": ("lab", "Start the live lab: fit pictures in the browser and watch training happen."),
    "presets": ("presets", "List the presets with one-line descriptions."),
    "render": ("render", "Draw a fitted run at any size or zoom: the network is a continuous picture."),
    "reproduce": ("reproduce", "Run the six presets and judge the original experiment's findings."),
    "sweep": ("sweep", "Sweep hyperparameters on Ray Tune: every trial is a run folder under sweeps/NAME/runs."),
    "tensorboard": ("tensorboard", "Write TensorBoard events for run folders made without --tensorboard."),
    "train": ("train", "Fit a picture: PRESET (default relu_1) on the built-in OVERFIT, or --text / --image."),
}


class LazyGroup(click.Group):
    """A click group whose subcommands live in modules imported on first use (click's documented lazy-loading pattern).

    Each module named in `lazy` defines its command as `command`.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy and name not in self.commands:
            module = importlib.import_module(f"{__name__}.{self.lazy[name][0]}")
            self.add_command(module.command, name)
        return super().get_command(ctx, name)

    def _stand_in(self, name: str) -> click.Command:
        """The command if loaded, else an empty command with its help from the table (same short help, no import)."""
        return self.commands.get(name) or click.Command(name, help=self.lazy[name][1])

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of `--help`, from the table: the same lines click would make, without importing a command."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._stand_in(name).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="overfit")
def main() -> None:
    """overfit: fit pictures with coordinate neural networks.

    A network is shown random pixel coordinates (y, x) of a black-and-white
    picture and learns to answer "ink or background". `overfit train` fits the
    built-in OVERFIT with the original recipe; `overfit presets` lists the
    original experiment's six configurations.
    """
