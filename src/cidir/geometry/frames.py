"""The coordinate frames a point can be in, and point-array types that name their frame.

- ``VOXEL``: continuous 0-based voxel index, axis order (x, y[, z]) — the order of SimpleITK
  sizes and points. Arrays (numpy / torch) of image values are stored (z, y, x).
- ``WORLD``: physical position in millimetres, LPS, as ITK, ANTs, elastix and 3D Slicer
  store it on disk: ``world = origin + direction @ (spacing * voxel)``.
- ``NETWORK``: the implicit network's input, ``(world - center) / scale`` with one isotropic
  ``scale`` (mm) for every axis, so that a derivative in network units is a derivative in mm
  up to the constant ``scale``; the grid fits in [-1, 1].
- ``CUBE``: the normalized coordinates of ``torch.nn.functional.grid_sample`` with
  ``align_corners=True``, per voxel axis: -1 ↔ voxel 0, +1 ↔ voxel size - 1, i.e.
  ``cube = 2 · voxel / max(size - 1, 1) - 1`` (a size-1 axis uses 1 as the denominator:
  voxel 0 ↔ -1; ``grid_sample`` reads its single voxel at any coordinate).

Point arrays are ``(..., D)`` numpy arrays or torch tensors. Signatures say which frame they
hold with the aliases below, e.g. ``World[np.ndarray]`` or ``Voxel[P]`` (P: numpy or torch,
the same type in and out): ``Annotated`` types, the frame is part of the type's metadata.
"""

from __future__ import annotations

import enum
from typing import Annotated, TypeVar

import numpy as np
import torch


class Frame(enum.Enum):
    """Names of the coordinate frames a point can be expressed in (see the module docstring)."""

    VOXEL = "voxel"
    WORLD = "world"
    NETWORK = "network"
    CUBE = "cube"


P = TypeVar("P", np.ndarray, torch.Tensor)

#: Continuous 0-based voxel indices (..., D), (x, y[, z]) order.
Voxel = Annotated[P, Frame.VOXEL]
#: World positions (..., D), mm, LPS.
World = Annotated[P, Frame.WORLD]
#: Network inputs (..., D): ``(world - center) / scale``.
Network = Annotated[P, Frame.NETWORK]
#: ``grid_sample`` coordinates (..., D) with ``align_corners=True``.
Cube = Annotated[P, Frame.CUBE]
