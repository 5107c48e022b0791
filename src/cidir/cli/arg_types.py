"""Argument types of the ``cidir`` command line: each parses one option's text or raises
``argparse.ArgumentTypeError`` (argparse then exits with status 2 and a usage line)."""

from __future__ import annotations

import argparse


def label_list(text: str) -> list[int]:
    """``1,2,5`` → [1, 2, 5] (label ids)."""
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, found {text!r}") from None


def positive_int(text: str) -> int:
    """An integer ≥ 1 (e.g. ``--threads``)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, found {text!r}")
    return value


def alpha_value(text: str) -> float | tuple[float, ...]:
    """``0.35`` → 0.35; ``0.35,0.7`` → (0.35, 0.7) (one number per conditioned
    hyperparameter). Only the form is checked here: the command checks the range [0, 1] and
    the count against the run's model, with its one-line error."""
    from cidir.selection.alpha_space import alpha_numbers

    try:
        return alpha_numbers(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number, or comma-separated numbers a1,a2 (one per conditioned "
            f"hyperparameter), found {text!r}") from None
