"""Points of the α space: one α per conditioned hyperparameter, each in [0, 1].

A model conditioned on one value (the default) takes α as a float; one conditioned on K > 1
values (e.g. the ``bending-jacobian`` preset: α₁ drives bending, α₂ the volume-change
penalty) takes a K-tuple. This module holds what the selection, the run folder and the CLI
share about such points: reading them (from text or JSON), writing them, the order in which
ties are broken, and the search over K > 1 dimensions.

The search over K ≥ 2 (:func:`explore`): a product grid of ``selection.coarse_alphas``
values per axis, then, around the best point so far, its 3^K neighbours at half the step,
again and again until the step is that of the 1-D grid (1 / (``num_alphas`` − 1)). With the
defaults (6 per axis, 21) that is at most 36 + 8 + 8 = 52 points in 2-D (fewer when the best
lies on an edge of the square) instead of 441 for the full product grid at the same
resolution; ``benchmarks/two_alpha.py`` measures the gap.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import numpy as np

from cidir.config import SelectionConfig
from cidir.errors import InputError

#: one α: a float for a model conditioned on one value, a tuple for several
Alpha = float | tuple[float, ...]


def components(alpha: Alpha | Sequence[float]) -> tuple[float, ...]:
    """α as a tuple of its values (one for a scalar α)."""
    if isinstance(alpha, (int, float, np.floating)):
        return (float(alpha),)
    return tuple(float(v) for v in alpha)


def as_alpha(value: Alpha | Sequence[float]) -> Alpha:
    """A float when ``value`` has one value, a tuple of floats otherwise (JSON lists too)."""
    values = tuple(round(v, 10) for v in components(value))
    return values[0] if len(values) == 1 else values


def format_alpha(alpha: Alpha | Sequence[float], spec: str = ".3g") -> str:
    """``0.35`` for one value, ``(0.35, 0.7)`` for several."""
    values = [format(v, spec) for v in components(alpha)]
    return values[0] if len(values) == 1 else "(" + ", ".join(values) + ")"


def alpha_text(alpha: Alpha | Sequence[float]) -> str:
    """α as ``--alpha`` takes it: ``0.35`` or ``0.35,0.7`` (full precision)."""
    return ",".join(f"{v:.6g}" for v in components(alpha))


def alpha_numbers(text: str) -> Alpha:
    """``0.35`` or ``0.35,0.7`` → α, the form only (the range is not checked); ValueError
    when a part is not a number."""
    return as_alpha(tuple(float(part) for part in str(text).split(",")))


def parse_alpha(text: str, what: str = "--alpha") -> Alpha:
    """``0.35`` or ``0.35,0.7`` (one value per condition) → α; InputError otherwise."""
    try:
        alpha = alpha_numbers(text)
    except ValueError:
        raise InputError(f"{what}: expected a number in [0, 1] or numbers a1,a2,… in [0, 1] "
                         f"(one per conditioned hyperparameter), found {text!r}") from None
    check_values(components(alpha), what)
    return alpha


def check_values(values: Sequence[float], what: str) -> None:
    """InputError unless every value is a finite number in [0, 1]."""
    for v in values:
        if not (math.isfinite(v) and 0.0 <= v <= 1.0):
            raise InputError(f"{what}: expected values in [0, 1], found {alpha_text(values)}")


def check_count(alpha: Alpha, conditions: int, what: str = "--alpha") -> Alpha:
    """``alpha`` unchanged; InputError unless it has one value per condition."""
    count = len(components(alpha))
    if count != conditions:
        shape = "one value" if conditions == 1 else f"{conditions} values a1,a2,…"
        raise InputError(f"{what}: this model is conditioned on {conditions} hyperparameter(s): "
                         f"expected {shape}, found {count} ({alpha_text(alpha)})")
    return alpha


def alpha_columns(alpha: Alpha) -> dict[str, float]:
    """The α columns of a table row: ``alpha``, or ``alpha_1`` … ``alpha_K`` for several."""
    values = components(alpha)
    if len(values) == 1:
        return {"alpha": values[0]}
    return {f"alpha_{k + 1}": v for k, v in enumerate(values)}


def smoothness(alpha: Alpha) -> tuple[float, tuple[float, ...]]:
    """The order in which ties are broken: the most regularized point wins (the largest sum
    of α, then the largest first value, …)."""
    values = components(alpha)
    return (round(sum(values), 9), values)


def alpha_grid(num: int) -> list[float]:
    """``num`` evenly spaced α in [0, 1]."""
    return [round(float(a), 10) for a in np.linspace(0.0, 1.0, num)]


def product_grid(per_axis: int, conditions: int) -> list[Alpha]:
    """Every point of ``per_axis`` evenly spaced values in [0, 1] on each axis."""
    axis = alpha_grid(per_axis)
    if conditions == 1:
        return list(axis)
    return [tuple(p) for p in itertools.product(axis, repeat=conditions)]


def neighbours(center: Alpha, step: float) -> list[Alpha]:
    """``center`` and its 3^K − 1 neighbours at ±``step`` on each axis, inside [0, 1]."""
    axes = [[round(v + d * step, 10) for d in (-1, 0, 1) if -1e-12 <= v + d * step <= 1 + 1e-12]
            for v in components(center)]
    return [as_alpha(tuple(min(max(v, 0.0), 1.0) for v in p)) for p in itertools.product(*axes)]


#: scores new points, returning one merit per point (higher is better; NaN when undefined)
Scorer = Callable[[list[Alpha]], list[float]]


def explore(score: Scorer, conditions: int, config: SelectionConfig,
            alphas: Sequence[Alpha] | None = None) -> list[Alpha]:
    """Score the α of the search and return them in the order scored: ``alphas`` when given,
    the 1-D grid of ``config.num_alphas`` for one condition, otherwise the coarse-to-fine
    search of the module docstring."""
    if alphas is not None:
        points = [check_count(as_alpha(a), conditions, "alphas") for a in alphas]
        for p in points:
            check_values(components(p), "alphas")
        score(points)
        return points
    if conditions == 1:
        points = product_grid(config.num_alphas, 1)
        score(points)
        return points
    finest = 1.0 / (config.num_alphas - 1)
    step = 1.0 / (config.coarse_alphas - 1)
    points = product_grid(config.coarse_alphas, conditions)
    merit = dict(zip(points, score(points), strict=True))
    while step > finest + 1e-12:
        step = max(step / 2.0, finest)
        best = max(merit, key=lambda p: (np.nan_to_num(merit[p], nan=-np.inf), smoothness(p)))
        new = [p for p in neighbours(best, step) if p not in merit]
        merit.update(zip(new, score(new), strict=True))
        points += new
    return points
