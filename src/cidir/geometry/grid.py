"""The image grid: the one object that converts between the frames of
:mod:`cidir.geometry.frames` (``VOXEL``, ``WORLD`` mm LPS, ``NETWORK``, ``CUBE``).

``world = origin + direction @ (spacing * voxel)``; the network frame is
``(world - center) / scale`` with one isotropic ``scale`` (mm) for every axis (``center`` is
the grid's centre and ``scale`` half the largest side of its world bounding box, so the grid
fits in [-1, 1]); the cube frame is ``grid_sample``'s ``align_corners=True`` coordinates.

All point arrays are ``(..., D)`` with D = 2 or 3 and may be numpy arrays or torch tensors;
the result has the type, dtype and device of the input (float64 for integer input). The hot
paths use :meth:`Grid.maps`, the same maps as cached tensors on a device.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import torch
from numpy.typing import NDArray

from cidir.geometry.affine import apply_affine, homogeneous
from cidir.geometry.frames import Cube, Frame, Network, P, Voxel, World
from cidir.geometry.maps import GridMaps, grid_maps

if TYPE_CHECKING:
    import SimpleITK as sitk

FloatArray = NDArray[np.float64]


def _like(values: FloatArray, points: P) -> Any:
    """``values`` as a tensor of the points' floating dtype and device (numpy unchanged)."""
    if isinstance(points, torch.Tensor):
        dtype = points.dtype if points.is_floating_point() else torch.float64
        return torch.as_tensor(values, dtype=dtype, device=points.device)
    return values


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
    def centered(cls, size: tuple[int, ...], spacing: tuple[float, ...],
                 center: tuple[float, ...], direction: tuple[float, ...] | None = None) -> Grid:
        """A grid whose centre voxel, (size - 1) / 2, lies at world ``center`` (mm)."""
        d = len(size)
        m = np.eye(d) if direction is None else np.asarray(direction, float).reshape(d, d)
        extent = (np.asarray(size) - 1) * np.asarray(spacing)  # mm along each voxel axis
        origin = np.asarray(center, float) - m @ (extent / 2)
        return cls(size, spacing, tuple(origin), tuple(m.ravel()))

    @classmethod
    def from_sitk(cls, image: sitk.Image) -> Grid:
        """The grid of a ``SimpleITK.Image``."""
        return cls(
            size=image.GetSize(),
            spacing=image.GetSpacing(),
            origin=image.GetOrigin(),
            direction=image.GetDirection(),
        )

    def apply_to_sitk(self, image: sitk.Image) -> None:
        """Set spacing, origin and direction of a ``SimpleITK.Image`` to this grid's."""
        if tuple(image.GetSize()) != self.size:
            raise ValueError(f"image size {image.GetSize()} does not match grid size {self.size}")
        image.SetSpacing(self.spacing)
        image.SetOrigin(self.origin)
        image.SetDirection(self.direction)

    def to_sitk(self, array: np.ndarray, vector: bool = False) -> sitk.Image:
        """A ``SimpleITK.Image`` of ``array`` on this grid: shape ``self.shape`` (z, y, x), or
        ``self.shape + (C,)`` with ``vector`` (C components per voxel, e.g. a displacement
        field in mm). The array's dtype is kept (bool is not a SimpleITK pixel type)."""
        import SimpleITK as sitk

        expected = self.shape + (tuple(array.shape[-1:]) if vector else ())
        if tuple(array.shape) != expected or (vector and array.ndim != self.ndim + 1):
            raise ValueError(f"array shape {array.shape} does not fit grid shape (z, y, x) "
                             f"{self.shape}{' + (C,)' if vector else ''}")
        image = sitk.GetImageFromArray(np.ascontiguousarray(array), isVector=vector)
        self.apply_to_sitk(image)
        return image

    def to_dict(self) -> dict[str, list[Any]]:
        return {
            "size": list(self.size),
            "spacing": list(self.spacing),
            "origin": list(self.origin),
            "direction": list(self.direction),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Grid:
        return cls(
            size=tuple(data["size"]),
            spacing=tuple(data["spacing"]),
            origin=tuple(data["origin"]),
            direction=tuple(data["direction"]),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def region(self, start: tuple[int, ...], size: tuple[int, ...]) -> Grid:
        """The grid of the voxels ``start <= voxel < start + size`` (same world positions)."""
        origin = self.voxel_to_world(np.asarray(start, dtype=np.float64))
        return Grid(tuple(size), self.spacing, tuple(float(v) for v in origin), self.direction)

    # ------------------------------------------------------------------ properties
    @property
    def ndim(self) -> int:
        return len(self.size)

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape (z, y, x) / (y, x) of an image on this grid."""
        return tuple(reversed(self.size))

    @property
    def spacing_zyx(self) -> tuple[float, ...]:
        """The spacing (mm) in array order (z, y, x) / (y, x), e.g. for ``scipy.ndimage``."""
        return tuple(reversed(self.spacing))

    @property
    def num_voxels(self) -> int:
        return int(np.prod(self.size))

    @property
    def voxel_volume(self) -> float:
        """Volume (area in 2D) of one voxel, mm³ (mm²)."""
        return float(np.prod(self.spacing))

    @property
    def direction_matrix(self) -> FloatArray:
        return np.asarray(self.direction, dtype=np.float64).reshape(self.ndim, self.ndim)

    @property
    def direction_column_major(self) -> tuple[float, ...]:
        """The direction cosines stored by columns (elastix's ``Direction`` order)."""
        return tuple(float(v) for v in self.direction_matrix.T.ravel())

    @property
    def voxel_to_world_matrix(self) -> FloatArray:
        """Homogeneous (D+1)×(D+1) matrix, voxel index → world mm."""
        return homogeneous(self.direction_matrix @ np.diag(self.spacing), self.origin)

    @property
    def world_to_voxel_matrix(self) -> FloatArray:
        return np.asarray(np.linalg.inv(self.voxel_to_world_matrix), dtype=np.float64)

    def corners_world(self) -> FloatArray:
        """World positions (2^D, D) of the corner voxel centres."""
        corners = np.array(list(itertools.product(*[(0, s - 1) for s in self.size])), float)
        return self.voxel_to_world(corners)

    @property
    def center_voxel(self) -> FloatArray:
        """Continuous voxel index of the grid centre, (size - 1) / 2."""
        return (np.asarray(self.size, float) - 1.0) / 2.0

    @property
    def center(self) -> FloatArray:
        """World position (mm) of the grid centre, voxel (size - 1) / 2."""
        return self.voxel_to_world(self.center_voxel)

    @property
    def half_extent(self) -> FloatArray:
        """Half the distance (mm) between the first and last voxel centres, per voxel axis."""
        half: FloatArray = (np.asarray(self.size) - 1) * np.asarray(self.spacing) / 2
        return half

    @property
    def scale(self) -> float:
        """The isotropic normalization scale (mm): half the largest world bounding-box side."""
        corners = self.corners_world()
        half = 0.5 * float(np.max(corners.max(axis=0) - corners.min(axis=0)))
        return half if half > 0 else 1.0

    def maps(self, device: torch.device | str = "cpu",
             dtype: torch.dtype = torch.float32) -> GridMaps:
        """This grid's frame maps as tensors on ``device`` in ``dtype`` (built once, cached)."""
        return grid_maps(self, torch.device(device), dtype)

    # ------------------------------------------------------------------ conversions
    def voxel_to_world(self, voxel: Voxel[P]) -> World[P]:
        """Continuous 0-based voxel index (x, y, z) → world (mm, LPS)."""
        return apply_affine(self.voxel_to_world_matrix, voxel)

    def world_to_voxel(self, world: World[P]) -> Voxel[P]:
        """World (mm, LPS) → continuous 0-based voxel index (x, y, z)."""
        return apply_affine(self.world_to_voxel_matrix, world)

    def world_to_network(self, world: World[P]) -> Network[P]:
        """World (mm) → network input, ``(world - center) / scale``."""
        c = _like(self.center, world)
        out: P = (world - c) / self.scale
        return out

    def network_to_world(self, net: Network[P]) -> World[P]:
        """Network input → world (mm)."""
        c = _like(self.center, net)
        out: P = net * self.scale + c
        return out

    def voxel_to_cube(self, voxel: Voxel[P]) -> Cube[P]:
        """Continuous voxel index → ``grid_sample`` coordinates (``align_corners=True``)."""
        denom = _like(np.maximum(np.asarray(self.size, float) - 1.0, 1.0), voxel)
        out: P = 2.0 * voxel / denom - 1.0
        return out

    def cube_to_voxel(self, cube: Cube[P]) -> Voxel[P]:
        """``grid_sample`` coordinates (``align_corners=True``) → continuous voxel index."""
        denom = _like(np.maximum(np.asarray(self.size, float) - 1.0, 1.0), cube)
        out: P = (cube + 1.0) * denom / 2.0
        return out

    def vectors_to_voxel_axes(self, vectors: World[P]) -> P:
        """World vectors (mm, e.g. displacements) → their components (mm) along the voxel
        axes: ``directionᵀ @ v`` (lengths unchanged, the direction is orthonormal)."""
        out: P = vectors @ _like(self.direction_matrix, vectors)
        return out

    def mm_to_voxel_steps(self, lengths: np.ndarray) -> FloatArray:
        """Lengths (mm) along each voxel axis (..., D) → numbers of voxels (mm / spacing)."""
        steps: FloatArray = np.asarray(lengths) / np.asarray(self.spacing)
        return steps

    def convert(self, points: P, source: Frame, target: Frame) -> P:
        """Convert points between any two frames (through the world frame)."""
        if source == target:
            return points
        world = points
        if source == Frame.VOXEL:
            world = self.voxel_to_world(points)
        elif source == Frame.NETWORK:
            world = self.network_to_world(points)
        elif source == Frame.CUBE:
            world = self.voxel_to_world(self.cube_to_voxel(points))
        if target == Frame.VOXEL:
            return self.world_to_voxel(world)
        if target == Frame.NETWORK:
            return self.world_to_network(world)
        if target == Frame.CUBE:
            return self.voxel_to_cube(self.world_to_voxel(world))
        return world

    # ------------------------------------------------------------------ voxel sets
    @overload
    def voxel_indices(self, flat: None = None) -> Voxel[np.ndarray]: ...

    @overload
    def voxel_indices(self, flat: P) -> Voxel[P]: ...

    def voxel_indices(self, flat: np.ndarray | torch.Tensor | None = None
                      ) -> np.ndarray | torch.Tensor:
        """Voxel indices (N, D) in (x, y, z) order of flat array positions (integers).

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

    @overload
    def world_points(self, flat: None = None) -> World[np.ndarray]: ...

    @overload
    def world_points(self, flat: P) -> World[P]: ...

    def world_points(self, flat: np.ndarray | torch.Tensor | None = None
                     ) -> np.ndarray | torch.Tensor:
        """World positions (N, D) of voxels at flat array positions (all voxels if None);
        float64."""
        idx = self.voxel_indices(flat)
        if isinstance(idx, torch.Tensor):
            return self.voxel_to_world(idx.to(torch.float64))
        return self.voxel_to_world(idx.astype(np.float64))

    def voxel_step(self, axis: int) -> FloatArray:
        """World vector (mm) of one voxel step along voxel axis ``axis`` (x = 0)."""
        out: FloatArray = self.direction_matrix[:, axis] * self.spacing[axis]
        return out

    def contains_voxel(self, voxel: Voxel[P], margin: float = 0.5) -> P:
        """Whether continuous voxel indices lie within [-margin, size - 1 + margin] per axis."""
        if isinstance(voxel, torch.Tensor):
            size = torch.as_tensor(self.size, dtype=voxel.dtype, device=voxel.device)
            return ((voxel >= -margin) & (voxel <= size - 1 + margin)).all(dim=-1)
        size_np = np.asarray(self.size, dtype=float)
        inside: np.ndarray = np.all((voxel >= -margin) & (voxel <= size_np - 1 + margin), axis=-1)
        return inside

    def contains_world(self, world: World[P], margin: float = 0.5) -> P:
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

    def nearest_world_axes(self) -> tuple[NDArray[np.intp], FloatArray]:
        """For each voxel axis j: the nearest world (LPS) axis and the sign of its direction.

        Falls back to the identity when two voxel axes share a nearest world axis (oblique)."""
        m = self.direction_matrix
        d = self.ndim
        world = np.argmax(np.abs(m), axis=0)
        if sorted(world.tolist()) != list(range(d)):
            world = np.arange(d)
        sign = np.sign(m[world, np.arange(d)])
        sign[sign == 0] = 1
        return world, sign

    def describe(self, direction: bool = False) -> str:
        """Size, spacing and origin on one line; with ``direction``, also the direction
        cosines (rounded to 4 decimals) when they are not the identity."""
        def f(v: tuple[float, ...]) -> str:
            return "(" + ", ".join(f"{x:g}" for x in v) + ")"

        text = f"size {self.size}, spacing {f(self.spacing)} mm, origin {f(self.origin)} mm"
        if direction and not np.allclose(self.direction_matrix, np.eye(self.ndim)):
            text += f", direction {f(tuple(np.round(self.direction, 4).tolist()))}"
        return text
