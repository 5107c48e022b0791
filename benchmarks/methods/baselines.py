"""Reference points: no registration (identity in physical space) and the common initial
affine alone (fixed → moving matrix of the pair, as a field)."""

from __future__ import annotations

import numpy as np

from benchmarks.fields import affine_field
from benchmarks.methods import MethodResult
from benchmarks.pairs import PairData


def run_identity(pair: PairData, settings: dict) -> MethodResult:
    shape = pair.fixed.grid.shape + (pair.ndim,)
    return MethodResult(np.zeros(shape), 0.0)


def run_affine(pair: PairData, settings: dict) -> MethodResult:
    return MethodResult(affine_field(pair.init, pair.fixed.grid), 0.0)
