"""Homogeneous affine matrices: the one place that knows their layout.

A (D+1)×(D+1) matrix ``M = [A t; 0 1]`` maps a point ``x`` (row vector, (x, y[, z]) order) to
``A @ x + t``. cidir uses such matrices for voxel ↔ world maps of a grid (see
:class:`~cidir.geometry.grid.Grid`) and for the initial alignment fixed → moving (world mm,
LPS; see :mod:`cidir.alignment`).

Every function accepts numpy arrays or torch tensors for the points; a numpy matrix applied
to torch points is converted to the points' dtype (float64 for integer points) and device.
"""

from __future__ import annotations

from typing import overload

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]


def homogeneous(linear: ArrayLike, offset: ArrayLike) -> FloatArray:
    """The (D+1)×(D+1) float64 matrix ``[linear offset; 0 1]``."""
    a = np.asarray(linear, dtype=np.float64)
    t = np.asarray(offset, dtype=np.float64)
    d = len(t)
    m = np.eye(d + 1)
    m[:d, :d] = a
    m[:d, d] = t
    return m


def affine_parts(matrix: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """(A, t) of a homogeneous matrix: the linear part (D, D) and the offset (D,) (views)."""
    m = np.asarray(matrix, dtype=np.float64)
    d = m.shape[0] - 1
    return m[:d, :d], m[:d, d]


def linear_determinant(matrix: ArrayLike) -> float:
    """det A of a homogeneous matrix ``[A t; 0 1]`` (its volume change, a float)."""
    return float(np.linalg.det(affine_parts(matrix)[0]))


@overload
def apply_affine(matrix: ArrayLike | torch.Tensor, points: NDArray[np.generic]) -> FloatArray:
    ...


@overload
def apply_affine(matrix: ArrayLike | torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    ...


def apply_affine(matrix: ArrayLike | torch.Tensor,
                 points: NDArray[np.generic] | torch.Tensor) -> FloatArray | torch.Tensor:
    """``A @ x + t`` for points (..., D): ``points @ A.T + t``.

    numpy points give a float64 array; torch points a tensor of their floating dtype (float64
    for integer points) on their device, the matrix converted to it.
    """
    if isinstance(points, torch.Tensor):
        dtype = points.dtype if points.is_floating_point() else torch.float64
        m = torch.as_tensor(matrix, dtype=dtype, device=points.device)
        d = m.shape[0] - 1
        return points.to(dtype) @ m[:d, :d].T + m[:d, d]
    mn = np.asarray(matrix)
    d = mn.shape[0] - 1
    out: FloatArray = points @ mn[:d, :d].T + mn[:d, d]
    return out
