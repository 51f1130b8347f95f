"""`overfit presets`: the named configurations with one-line descriptions."""

from __future__ import annotations

import click

from ..modes import MODES
from ..presets import DEFAULT_PRESET, MODERN_PRESETS, ORIGINAL_PRESETS, PRESETS


@click.command("presets")
def command() -> None:
    """List the presets with one-line descriptions."""
    width = max(len(n) for n in PRESETS)
    groups = (("The original experiment (binary pictures):", ORIGINAL_PRESETS),
              (f"Modern encodings (any --mode: {', '.join(MODES)}):", MODERN_PRESETS))
    for i, (title, names) in enumerate(groups):
        click.echo(("\n" if i else "") + title)
        for name in names:
            marker = "*" if name == DEFAULT_PRESET else " "
            click.echo(f"{marker} {name:<{width}}  {PRESETS[name].description}")
    click.echo("\n* is the default. Run one with: overfit train PRESET")
