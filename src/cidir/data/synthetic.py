"""A small synthetic pair with a known smooth displacement (2D or 3D), for tests and docs.

The moving image is an analytic sum of Gaussian blobs M(y) on a world grid; the fixed image
is F(x) = M(x + u(x)) with a known smooth displacement u (world mm, fixed → moving), so the
ground truth is exact (no interpolation). Label maps are thresholded blob memberships,
warped the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cidir.geometry import Grid, Image


@dataclass(frozen=True, eq=False)
class SyntheticPair:
    fixed: Image
    moving: Image
    fixed_labels: Image
    moving_labels: Image
    fixed_mask: Image
    true_displacement: np.ndarray  # grid.shape + (D,), world mm, fixed → moving
    amplitude_mm: float

    def true_displacement_at(self, world: np.ndarray) -> np.ndarray:
        return _displacement(world, self._bumps, self.amplitude_mm)

    _bumps: tuple = ()


def _blobs(world: np.ndarray, centers: np.ndarray, widths: np.ndarray,
           weights: np.ndarray) -> np.ndarray:
    d2 = ((world[:, None, :] - centers[None]) ** 2).sum(-1) / (widths[None] ** 2)
    return (weights[None] * np.exp(-0.5 * d2)).sum(-1)


def _displacement(world: np.ndarray, bumps: tuple, amplitude: float) -> np.ndarray:
    centers, widths, directions = bumps
    d2 = ((world[:, None, :] - centers[None]) ** 2).sum(-1) / (widths[None] ** 2)
    return amplitude * (np.exp(-0.5 * d2)[..., None] * directions[None]).sum(1)


def _grid(ndim: int, size: tuple[int, ...] | None, spacing: tuple[float, ...] | None,
          rotate: bool, rng: np.random.Generator) -> Grid:
    """The pair's grid (defaults of :func:`make_synthetic_pair`), origin drawn from ``rng``."""
    if ndim == 3:
        size = size or (48, 48, 28)
        spacing = spacing or (2.0, 2.0, 3.5)
    else:
        size = size or (64, 64)
        spacing = spacing or (2.0, 3.0)
    direction = np.eye(ndim)
    if rotate:
        t = 0.3
        direction[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    return Grid(size, spacing, tuple(rng.uniform(-50, 50, ndim)), tuple(direction.ravel()))


def make_synthetic_pair(ndim: int = 3, seed: int = 0, size: tuple[int, ...] | None = None,
                        spacing: tuple[float, ...] | None = None,
                        amplitude_mm: float = 8.0, num_blobs: int = 80,
                        rotate: bool = True) -> SyntheticPair:
    """A pair on an anisotropic grid (3D default: 48×48×28 at 2×2×3.5 mm; 2D: 64×64 at 2×3 mm),
    with a rotated direction when ``rotate``. The mask is the central ellipsoid."""
    rng = np.random.default_rng(seed)
    grid = _grid(ndim, size, spacing, rotate, rng)
    world = grid.world_points()
    half = grid.scale
    centre = grid.center_voxel

    # blobs in the voxel-aligned box, placed via the grid so they follow the rotation
    def in_box(n: int, shrink: float) -> np.ndarray:
        offset_mm = rng.uniform(-shrink, shrink, (n, ndim)) * grid.half_extent
        return grid.voxel_to_world(grid.mm_to_voxel_steps(offset_mm) + centre)

    blob_centers = in_box(num_blobs, 0.8)
    blob_widths = rng.uniform(0.08, 0.16, num_blobs) * half
    blob_weights = rng.uniform(0.5, 1.5, num_blobs) * rng.choice([-1, 1], num_blobs)
    bump_centers = in_box(4, 0.5)
    bump_widths = rng.uniform(0.35, 0.5, 4) * half
    dirs = rng.normal(size=(4, ndim))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    bumps = (bump_centers, bump_widths, dirs)

    u = _displacement(world, bumps, amplitude_mm)
    moving = _blobs(world, blob_centers, blob_widths, blob_weights)
    fixed = _blobs(world + u, blob_centers, blob_widths, blob_weights)

    # labels: the three largest-weight blobs' cores (distinct label values 1..3)
    order = np.argsort(-np.abs(blob_weights))[:3]

    def labels_at(points: np.ndarray) -> np.ndarray:
        out = np.zeros(len(points), np.int32)
        for k, i in enumerate(order):
            r = np.linalg.norm(points - blob_centers[i], axis=1) / (2.0 * blob_widths[i])
            out[(r < 1) & (out == 0)] = k + 1
        return out

    rel = (grid.world_to_voxel(world) - centre) / centre
    mask = ((rel**2).sum(1) < 0.8**2).astype(np.uint8)
    shape = grid.shape
    return SyntheticPair(
        fixed=Image(fixed.reshape(shape).astype(np.float32), grid, "synthetic fixed"),
        moving=Image(moving.reshape(shape).astype(np.float32), grid, "synthetic moving"),
        fixed_labels=Image(labels_at(world + u).reshape(shape), grid, "synthetic fixed labels"),
        moving_labels=Image(labels_at(world).reshape(shape), grid, "synthetic moving labels"),
        fixed_mask=Image(mask.reshape(shape), grid, "synthetic mask"),
        true_displacement=u.reshape(shape + (ndim,)),
        amplitude_mm=amplitude_mm,
        _bumps=bumps,
    )
