"""Registration methods compared by the benchmark, one module per family.

Each method is ``run(pair, settings) -> MethodResult``; its ``field`` is in the common
convention of :mod:`benchmarks.fields` (fixed grid, mm LPS, fixed → moving, initial affine
included). ``available(name)`` gives None, or the reason a peer cannot run here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

#: method name -> (module, function)
METHODS: dict[str, tuple[str, str]] = {
    "identity": ("benchmarks.methods.baselines", "run_identity"),
    "affine": ("benchmarks.methods.baselines", "run_affine"),
    "cidir": ("benchmarks.methods.inr", "run_cidir"),
    "idir": ("benchmarks.methods.inr", "run_idir"),
    "idir-grid": ("benchmarks.methods.inr", "run_idir_grid"),
    "idir-at-cidir": ("benchmarks.methods.inr", "run_idir_at_cidir"),
    "elastix": ("benchmarks.methods.elastix", "run_elastix"),
    "ants": ("benchmarks.methods.ants_syn", "run_ants"),
    "sitk": ("benchmarks.methods.sitk_demons", "run_demons"),
}
#: the optional package each peer needs (import name, pip name)
REQUIRES = {"elastix": ("itk", "itk-elastix"), "ants": ("ants", "antspyx")}
BASELINES = ("identity", "affine")


@dataclass
class MethodResult:
    """A method's output on one pair: the total field (common convention), the seconds spent
    registering (all trainings / weight-grid runs) and choosing, and what was chosen."""

    field: np.ndarray
    register_seconds: float
    select_seconds: float = 0.0
    choice: dict = field(default_factory=dict)


def available(name: str) -> str | None:
    """None if ``name`` can run here, else the reason (missing optional package)."""
    if name not in METHODS:
        return f"unknown method {name!r}"
    if name in REQUIRES:
        module, pip_name = REQUIRES[name]
        try:
            importlib.import_module(module)
            if name == "elastix":
                import itk

                itk.ElastixRegistrationMethod  # noqa: B018 (lazy attribute: checks itk-elastix)
        except Exception as exc:  # noqa: BLE001 - any import failure means "skip"
            return f"{pip_name} not importable ({type(exc).__name__}: {exc}); " \
                   f"pip install -e '.[peers]'"
    return None


def get(name: str) -> Callable:
    module, func = METHODS[name]
    return getattr(importlib.import_module(module), func)


def weight_choice(alphas: list[float], scores: list[float]) -> int:
    """The same rule as cidir's α search for a grid of separate runs: best selection Dice,
    near-ties (1e-4) going to the smoother (larger α / weight)."""
    best = max(scores)
    ties = [i for i, s in enumerate(scores) if s >= best - 1e-4]
    return max(ties, key=lambda i: alphas[i])
