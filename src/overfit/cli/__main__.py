"""`python -m overfit.cli ...`: the same as the `overfit` command."""

from . import main

main()
