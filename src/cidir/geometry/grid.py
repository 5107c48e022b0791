"""The image grid: the one object that converts between the three frames.

Frames (see :class:`Frame`):

- ``VOXEL``: continuous 0-based voxel index, axis order (x, y, z) — the order of
  SimpleITK sizes and points. Arrays (numpy / torch) are stored (z, y, x).
- ``WORLD``: physical position in millimetres, LPS, as ITK, ANTs, elastix and 3D Slicer
  store it on disk: ``world = origin + direction @ (spacing * voxel)``.
- ``NETWORK``: the implicit network's input, ``(world - center) / scale`` with one
  isotropic ``scale`` (mm) for every axis, so that a derivative in network units is a
  derivative in mm up to the constant ``scale``. ``center`` is the grid's centre and
  ``scale`` half the largest side of its world bounding box, so the grid fits in [-1, 1].

All point arrays are ``(..., D)`` with D = 2 or 3 and may be numpy arrays or torch
tensors; the result has the type, dtype and device of the input.
"""

from __future__ import annotations

import enum
import itertools
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

Points = Any  # np.ndarray | torch.Tensor of shape (..., D)


class Frame(enum.Enum):
    """Names of the coordinate frames a point can be expressed in."""

    VOXEL = "voxel"
    WORLD = "world"
    NETWORK = "network"


def _as_matrix_like(matrix: np.ndarray, points: Points):
    if isinstance(points, torch.Tensor):
        dtype = points.dtype if points.is_floating_point() else torch.float64
        return torch.as_tensor(matrix, dtype=dtype, device=points.device)
    return matrix


@dataclass(frozen=True)
class Grid:
    """A 2D or 3D sampling grid in physical space.

    Attributes:
        size: number of voxels per axis, (x, y[, z]).
        spacing: voxel spacing in mm per axis, (x, y[, z]).
        origin: world position (mm, LPS) of voxel (0, 0[, 0]).
        direction: direction cosines, row-major D×D (as ``SimpleITK.GetDirection``);
            column j is the world direction of voxel axis j.
    """

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    def __post_init__(self) -> None:
        d = len(self.size)
        object.__setattr__(self, "size", tuple(int(s) for s in self.size))
        object.__setattr__(self, "spacing", tuple(float(s) for s in self.spacing))
        object.__setattr__(self, "origin", tuple(float(s) for s in self.origin))
        object.__setattr__(self, "direction", tuple(float(s) for s in self.direction))
        if d not in (2, 3):
            raise ValueError(f"grid: expected 2 or 3 axes, found size {self.size}")
        if len(self.spacing) != d or len(self.origin) != d or len(self.direction) != d * d:
            raise ValueError(
                f"grid: size {self.size} needs {d} spacings, {d} origin values and {d * d} "
                f"direction values; found {len(self.spacing)}, {len(self.origin)}, "
                f"{len(self.direction)}"
            )
        if any(s < 1 for s in self.size):
            raise ValueError(f"grid: every size must be >= 1, found {self.size}")
        if any(not np.isfinite(s) or s <= 0 for s in self.spacing):
            raise ValueError(f"grid: spacing must be positive and finite, found {self.spacing}")
        m = np.asarray(self.direction).reshape(d, d)
        if not np.allclose(m @ m.T, np.eye(d), atol=1e-4):
            raise ValueError(f"grid: direction must be orthonormal, found {self.direction}")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_shape(
        cls,
        shape_zyx: tuple[int, ...],
        spacing: tuple[float, ...] | None = None,
        origin: tuple[float, ...] | None = None,
        direction: tuple[float, ...] | None = None,
    ) -> Grid:
        """A grid for an array of shape (z, y, x) (or (y, x)); spacing etc. in (x, y, z)."""
        size = tuple(reversed(shape_zyx))
        d = len(size)
        return cls(
            size=size,
            spacing=spacing if spacing is not None else (1.0,) * d,
            origin=origin if origin is not None else (0.0,) * d,
            direction=direction if direction is not None else tuple(np.eye(d).ravel()),
        )

    @classmethod
    def from_sitk(cls, image) -> Grid:
        """The grid of a ``SimpleITK.Image``."""
        return cls(
            size=image.GetSize(),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=image.GetDirection(),
        )

    def apply_to_sitk(self, image) -> None:
        """Set spacing, origin and direction of a ``SimpleITK.Image`` to this grid's."""
        if tuple(image.GetSize()) != self.size:
            raise ValueError(f"image size {image.GetSize()} does not match grid size {self.size}")
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)

    def to_dict(self) -> dict:
        return {
            "size": list(self.size),
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Grid:
        return cls(
            size=tuple(data["size"]),
            spacing=tuple(data["spacing"]),
            origin=tuple(data["origin"]),
            direction=tuple(data["direction"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    # ------------------------------------------------------------------ properties
    @property
    def ndim(self) -> int:
        return len(self.size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape (z, y, x) / (y, x) of an image on this grid."""
        return tuple(reversed(self.size))

    @property
    def num_voxels(self) -> int:
        return int(np.prod(self.size))

    @property
    def direction_matrix(self) -> np.ndarray:
        return np.asarray(self.direction, dtype=np.float64).reshape(self.ndim, self.ndim)

    @property
    def voxel_to_world_matrix(self) -> np.ndarray:
        """Homogeneous (D+1)×(D+1) matrix, voxel index → world mm."""
        d = self.ndim
        m = np.eye(d + 1)
        m[:d, :d] = self.direction_matrix @ np.diag(self.spacing)
        m[:d, d] = self.origin
        return m

    @property
    def world_to_voxel_matrix(self) -> np.ndarray:
        return np.linalg.inv(self.voxel_to_world_matrix)

    def corners_world(self) -> np.ndarray:
        """World positions (2^D, D) of the corner voxel centres."""
        corners = np.array(list(itertools.product(*[(0, s - 1) for s in self.size])), float)
        return self.voxel_to_world(corners)

    @property
    def center(self) -> np.ndarray:
        """World position (mm) of the grid centre, voxel (size - 1) / 2."""
        return self.voxel_to_world((np.asarray(self.size, float) - 1.0) / 2.0)

    @property
    def scale(self) -> float:
        """The isotropic normalization scale (mm): half the largest world bounding-box side."""
        corners = self.corners_world()
        half = 0.5 * float(np.max(corners.max(axis=0) - corners.min(axis=0)))
        return half if half > 0 else 1.0

    # ------------------------------------------------------------------ conversions
    def voxel_to_world(self, voxel: Points) -> Points:
        """Continuous 0-based voxel index (x, y, z) → world (mm, LPS)."""
        m = _as_matrix_like(self.voxel_to_world_matrix, voxel)
        d = self.ndim
        return voxel @ m[:d, :d].T + m[:d, d]

    def world_to_voxel(self, world: Points) -> Points:
        """World (mm, LPS) → continuous 0-based voxel index (x, y, z)."""
        m = _as_matrix_like(self.world_to_voxel_matrix, world)
        d = self.ndim
        return world @ m[:d, :d].T + m[:d, d]

    def world_to_network(self, world: Points) -> Points:
        """World (mm) → network input, ``(world - center) / scale``."""
        c = _as_matrix_like(self.center, world)
        return (world - c) / self.scale

    def network_to_world(self, net: Points) -> Points:
        """Network input → world (mm)."""
        c = _as_matrix_like(self.center, net)
        return net * self.scale + c

    def convert(self, points: Points, source: Frame, target: Frame) -> Points:
        """Convert points between any two frames."""
        if source == target:
            return points
        world = {
            Frame.WORLD: lambda p: p,
            Frame.VOXEL: self.voxel_to_world,
            Frame.NETWORK: self.network_to_world,
        }[source](points)
        return {
            Frame.WORLD: lambda p: p,
            Frame.VOXEL: self.world_to_voxel,
            Frame.NETWORK: self.world_to_network,
        }[target](world)

    # ------------------------------------------------------------------ voxel sets
    def voxel_indices(self, flat: np.ndarray | torch.Tensor | None = None):
        """Voxel indices (N, D) in (x, y, z) order of flat array positions.

        ``flat`` indexes an array of shape ``self.shape`` raveled in C order (x fastest);
        ``None`` means every voxel, in that order.
        """
        if flat is None:
            flat = np.arange(self.num_voxels)
        if isinstance(flat, torch.Tensor):
            out = []
            rest = flat
            for s in self.size:
                out.append(rest % s)
                rest = torch.div(rest, s, rounding_mode="floor")
            return torch.stack(out, dim=-1)
        zyx = np.unravel_index(np.asarray(flat), self.shape)
        return np.stack(list(reversed(zyx)), axis=-1)

    def world_points(self, flat=None):
        """World positions (N, D) of voxels at flat array positions (all voxels if None)."""
        idx = self.voxel_indices(flat)
        if isinstance(idx, torch.Tensor):
            return self.voxel_to_world(idx.to(torch.float64))
        return self.voxel_to_world(idx.astype(np.float64))

    def contains_voxel(self, voxel: Points, margin: float = 0.5):
        """Whether continuous voxel indices lie within [-margin, size - 1 + margin] per axis."""
        if isinstance(voxel, torch.Tensor):
            size = torch.as_tensor(self.size, dtype=voxel.dtype, device=voxel.device)
            return ((voxel >= -margin) & (voxel <= size - 1 + margin)).all(dim=-1)
        size = np.asarray(self.size, dtype=float)
        return np.all((voxel >= -margin) & (voxel <= size - 1 + margin), axis=-1)

    def contains_world(self, world: Points, margin: float = 0.5):
        """Whether world points (mm) lie within the grid's extent: voxel indices within
        [-margin, size - 1 + margin] per axis (0.5: the outer faces of the edge voxels)."""
        return self.contains_voxel(self.world_to_voxel(world), margin)

    def same_as(self, other: Grid, atol: float = 1e-4) -> bool:
        """Whether two grids describe the same voxels in world space (within ``atol`` mm)."""
        return (
            self.size == other.size
            and np.allclose(self.spacing, other.spacing, atol=atol)
            and np.allclose(self.origin, other.origin, atol=atol)
            and np.allclose(self.direction, other.direction, atol=atol)
        )

    def describe(self) -> str:
        def f(v):
            return "(" + ", ".join(f"{x:g}" for x in v) + ")"

        return f"size {self.size}, spacing {f(self.spacing)} mm, origin {f(self.origin)} mm"
