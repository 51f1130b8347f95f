"""Errors overfit reports to people: each carries a one-line message naming the problem.

The CLI prints any `OverfitError` as a single `Error: ...` line and exits non-zero;
anything else is a bug and keeps its traceback.
"""


class OverfitError(Exception):
    """Base of every error that is the user's input, not overfit's bug."""
