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
    """``0.35`` → 0.35; ``0.35,0.7`` → (0.35, 0.7) (one value per conditioned
    hyperparameter, each in [0, 1])."""
    from cidir.errors import InputError
    from cidir.selection.alpha_space import parse_alpha

    try:
        return parse_alpha(text, "α")
    except InputError as exc:  # "α: expected …": argparse names the option itself
        raise argparse.ArgumentTypeError(str(exc).removeprefix("α: ")) from None
