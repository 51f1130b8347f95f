"""Every error overfit reports to people, as types; this module imports nothing of overfit's.

An `OverfitError` is the user's input, not overfit's bug: a one-line `detail` and,
where one input is to blame, its `field`: a dotted config key (`model.hidden`) or the
name of a function parameter (`region`, `output`, `format`). Library code names only
those, never a command-line flag: the CLI and the lab map each type and field to their
own wording (`--region`, a form field, an HTTP status). Anything else raised is a bug
and keeps its traceback.
"""

from __future__ import annotations


class OverfitError(Exception):
    """Base of every error that is the user's input; `str(e)` is "field: detail" (or the detail alone)."""

    def __init__(self, detail: str, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail

    def __reduce__(self) -> tuple:
        # Subclasses' __init__ take other arguments (step, path, ...): unpickle from the state, not by calling it.
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type, args: tuple, state: dict) -> OverfitError:
    error = Exception.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(OverfitError, ValueError):
    """A config value, key or type that overfit refuses; `field` is the dotted key."""


class UnknownPresetError(ConfigError, KeyError):
    """A preset name that does not exist."""


class TargetError(OverfitError, ValueError):
    """A picture or text that cannot be fitted: missing, unreadable, too small or too large.

    Its message names the picture; `field` (the config key to change, if any) is not repeated in it.
    """

    def __str__(self) -> str:
        return self.detail


class NothingToLearnWarning(UserWarning):
    """The picture is all one class: any constant prediction is already perfect."""


class DeviceError(OverfitError):
    """The requested torch device does not exist or is not available here."""


class TrainingDiverged(OverfitError):
    """The loss became NaN or infinite; `step` is the first step where it did."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"training diverged: loss is {value} at step {step}")
        self.step = step
        self.value = value


class MemoryBudgetError(OverfitError):
    """A run whose estimated memory (`budget.estimate`) is over its budget, refused before anything is allocated.

    `field` is the config key that drives the estimate most (`fields` all that do); `needed`
    and `budget` are bytes; `source_field` names the parameter that set the budget
    ("max_memory"), or is None when it is the default (`source` says what that is).
    `words(names)` is the one line with each of `keys` shown as `names` maps it (the CLI
    passes its flags); `detail` is the same with the keys as they are.
    """

    def __init__(self, summary: str, what: str, fields: tuple[str, ...], advice: str, needed: int, budget: int,
                 budget_text: str, source_field: str | None, source: str) -> None:
        self.summary, self.what, self.fields, self.advice = summary, what, tuple(fields), advice
        self.needed, self.budget, self.budget_text = needed, budget, budget_text
        self.source_field, self.source = source_field, source
        super().__init__(self.words(), field=self.fields[0] if self.fields else None)

    @property
    def keys(self) -> tuple[str, ...]:
        """The config keys and parameters the message names (what `words` may show otherwise)."""
        return (*self.fields, "max_memory")

    def words(self, names: dict[str, str] | None = None, advice: bool = True) -> str:
        """'run needs ~68.7 GB and ~1.2 TFLOP per step (model.hidden: ...) but the budget is 11.8 GB (...); lower ... or raise ...'.

        `advice` False leaves out what to change (for a caller that cannot change it).
        """
        names = names or {}
        source = names.get(self.source_field, self.source_field) if self.source_field else self.source
        line = f"{self.summary} ({' and '.join(self.fields)}: {self.what}) but the budget is {self.budget_text} ({source})"
        if not advice:
            return line
        fields = " or ".join(names.get(f, f) for f in self.fields)
        return f"{line}; {self.advice.format(fields=fields)} or raise {names.get('max_memory', 'max_memory')}"

    def __str__(self) -> str:
        return self.detail


class DiskBudgetError(OverfitError):
    """Runs that may write more than the free space of their runs folder (`diskspace.check_disk`), refused before they start."""


class AllocationError(OverfitError):
    """An allocation that failed (torch's out of memory, MemoryError) although the estimate fit the budget.

    `fields` are the config keys that drive the run's memory most; `words(names)` shows
    them as `names` maps them (the CLI passes its flags).
    """

    def __init__(self, detail: str, fields: tuple[str, ...] = ()) -> None:
        super().__init__(detail, field=fields[0] if fields else None)
        self.fields = tuple(fields)

    @property
    def keys(self) -> tuple[str, ...]:
        return self.fields

    def words(self, names: dict[str, str] | None = None) -> str:
        names = names or {}
        return self.detail + (f"; lower {' or '.join(names.get(f, f) for f in self.fields)}" if self.fields else "")

    def __str__(self) -> str:
        return self.words()


class RunFolderError(OverfitError):
    """A run folder that cannot be created, read or continued."""


class RunExistsError(RunFolderError):
    """A run folder of the requested name already exists (it is never reused, only resumed)."""

    def __init__(self, detail: str, path: str) -> None:
        super().__init__(detail, field="name")
        self.path = path


class RunBusyError(RunFolderError):
    """Another process holds the run folder's lock (it is training there)."""


class RenderError(OverfitError, ValueError):
    """A render request that cannot be met; `field` names the parameter (region, scale, width, height, mode, output)."""


class ExportError(OverfitError, ValueError):
    """An export or inference backend that cannot be made; `field` names the parameter (format, backend, output)."""


# The name pip installs overfit by (pyproject.toml's [project] name; `overfit` on PyPI is another project's).
DISTRIBUTION = "overfit-lab"


class MissingDependency(OverfitError):
    """An optional package a feature needs is not installed; `extra` is the pip extra that brings it."""

    def __init__(self, feature: str, package: str, extra: str, field: str | None = None) -> None:
        super().__init__(f"{feature} needs the {package} package: pip install '{DISTRIBUTION}[{extra}]'", field=field)
        self.package = package
        self.extra = extra


class ReproduceError(OverfitError):
    """A reproduction that cannot run in the folder it was given."""


def first_line(e: BaseException) -> str:
    """The first line of a foreign exception's message (or its type's name), to quote inside a one-line error."""
    text = str(e)
    return text.splitlines()[0] if text.strip() else type(e).__name__
