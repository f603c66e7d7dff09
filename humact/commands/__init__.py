"""One module per `humact` subcommand (see `humact.cli`), and the argument types they share."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (so `--clips 0` is a usage error, not silently the default)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text}")
    return value


def seconds(text: str) -> float:
    """argparse type: a finite number of seconds >= 0 (at most a day)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds >= 0, got {text!r}") from None
    if not 0 <= value <= 86400:   # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"expected a number of seconds in [0, 86400], got {text}")
    return value
