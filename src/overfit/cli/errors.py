"""The one place that words overfit's errors for a terminal: types and fields to flags, and one `Error: ...` line.

Library code names a dotted config key (`schedule.steps`) or a parameter (`region`,
`output`) as an error's `field`, never a flag. Here each field becomes the flag a person
types: the options' own names where a command has one (`--steps`, `-o`), `--a.b` for any
other config key (every key can be set that way), and `--name` for parameter names.
Message text is never parsed: the flag goes in front of the detail.

    with reported():                  # an OverfitError inside prints "Error: --region: ..." and exits 1
        render(...)
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import click

from ..errors import AllocationError, MemoryBudgetError, OverfitError, RunExistsError

# Fields whose flag is not simply `--` + the field (with "-" for "_" in a parameter name): the commands' own options.
FLAGS = {
    "output": "-o",
    "out_dir": "--out",
    "schedule.steps": "--steps",
    "data.max_pixels": "--max-pixels",
    "data.holdout": "--holdout",
}


def flag(field: str) -> str:
    """The command-line flag that sets `field`: "schedule.steps" -> "--steps", "model.w0" -> "--model.w0", "region" -> "--region"."""
    if field in FLAGS:
        return FLAGS[field]
    return "--" + (field if "." in field else field.replace("_", "-"))


def message(e: OverfitError) -> str:
    """`e` as the CLI words it (without the "Error: " click adds)."""
    if isinstance(e, RunExistsError):
        return f"run folder {e.path} already exists; continue it with --resume {e.path} or choose another {flag(e.field or 'name')}"
    if isinstance(e, (MemoryBudgetError, AllocationError)):
        return e.words({key: flag(key) for key in e.keys})  # names several fields, and --max-memory
    return f"{flag(e.field)}: {e.detail}" if e.field else e.detail


def fail(text: str) -> click.ClickException:
    """A one-line `Error: text`, exit status 1."""
    return click.ClickException(text)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn an OverfitError raised inside into one `Error: ...` line, and so a failed allocation (out of memory).

    Anything else is a bug and keeps its traceback.
    """
    try:
        yield
    except OverfitError as e:
        raise fail(message(e)) from None
    except Exception as e:
        from ..memory import allocation_error, is_allocation_failure

        if not is_allocation_failure(e):
            raise
        raise fail(message(allocation_error(e, "running"))) from None


@contextlib.contextmanager
def warnings_as_lines() -> Iterator[None]:
    """Print each warning raised inside as one `Warning: ...` line on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        click.echo(f"Warning: {w.message}", err=True)
