"""A grid's frame maps as tensors on one device and dtype, for the hot paths.

:meth:`cidir.geometry.grid.Grid.maps` builds a :class:`GridMaps` once per (grid, device,
dtype) and caches it, so that the samplers, the transform and the chunked dense evaluators
share the same tensors instead of converting matrices on every call. The arithmetic is
that of the numpy conversions of :class:`~cidir.geometry.grid.Grid`, in the tensors' dtype
(the world → voxel matrix is inverted in float64 and then cast).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from cidir.geometry.affine import apply_affine

if TYPE_CHECKING:
    from cidir.geometry.grid import Grid


@dataclass(frozen=True, eq=False)
class GridMaps:
    """The maps between the frames of one grid (see :mod:`cidir.geometry.frames`).

    Attributes (tensors on ``device`` in ``dtype``; point arrays (B, D), (x, y[, z])):
        voxel_to_world_matrix: homogeneous (D+1)×(D+1), voxel → world mm.
        world_to_voxel_linear_t: (D, D), the transposed linear part of world → voxel.
        world_to_voxel_offset: (D,), its offset.
        size: voxels per axis (D,).
        cube_denominator: ``max(size - 1, 1)`` per axis (the ``CUBE`` frame's scale).
        center: world position (mm) of the grid centre, the ``NETWORK`` origin.
        scale: the isotropic ``NETWORK`` scale (mm), a Python float.
    """

    device: torch.device
    dtype: torch.dtype
    voxel_to_world_matrix: torch.Tensor
    world_to_voxel_linear_t: torch.Tensor
    world_to_voxel_offset: torch.Tensor
    size: torch.Tensor
    cube_denominator: torch.Tensor
    center: torch.Tensor
    scale: float

    def voxel_to_world(self, voxel: torch.Tensor) -> torch.Tensor:
        """Continuous voxel index → world (mm, LPS)."""
        return apply_affine(self.voxel_to_world_matrix, voxel)

    def world_to_voxel(self, world: torch.Tensor) -> torch.Tensor:
        """World (mm, LPS) → continuous voxel index."""
        return world @ self.world_to_voxel_linear_t + self.world_to_voxel_offset

    def world_to_network(self, world: torch.Tensor) -> torch.Tensor:
        """World (mm) → network input ``(world - center) / scale``."""
        return (world - self.center) / self.scale

    def network_to_world(self, net: torch.Tensor) -> torch.Tensor:
        """Network input → world (mm)."""
        return net * self.scale + self.center

    def voxel_to_cube(self, voxel: torch.Tensor) -> torch.Tensor:
        """Continuous voxel index → ``grid_sample`` coordinates (``align_corners=True``)."""
        return 2.0 * voxel / self.cube_denominator - 1.0

    def inside(self, voxel: torch.Tensor) -> torch.Tensor:
        """Whether voxel indices (B, D) lie in [-0.5, size - 0.5) on every axis: inside the
        image as ITK's resampling sees it (border voxels extend half a voxel)."""
        return ((voxel >= -0.5) & (voxel < self.size - 0.5)).all(dim=-1)


@functools.lru_cache(maxsize=64)
def grid_maps(grid: Grid, device: torch.device, dtype: torch.dtype) -> GridMaps:
    """The :class:`GridMaps` of ``grid`` on ``device`` in ``dtype`` (cached; built as normal
    tensors even under ``torch.inference_mode``, so that a later autograd use may save them)."""
    with torch.inference_mode(False):
        return _build(grid, device, dtype)


def _build(grid: Grid, device: torch.device, dtype: torch.dtype) -> GridMaps:
    d = grid.ndim
    inverse = torch.as_tensor(grid.world_to_voxel_matrix, dtype=torch.float64)
    size = torch.as_tensor(grid.size, dtype=dtype, device=device)
    return GridMaps(
        device=device,
        dtype=dtype,
        voxel_to_world_matrix=torch.as_tensor(grid.voxel_to_world_matrix, dtype=dtype,
                                              device=device),
        world_to_voxel_linear_t=inverse[:d, :d].T.to(dtype).to(device),
        world_to_voxel_offset=inverse[:d, d].to(dtype).to(device),
        size=size,
        cube_denominator=(size - 1).clamp_min(1.0),
        center=torch.as_tensor(grid.center, dtype=dtype).to(device),
        scale=float(grid.scale),
    )
