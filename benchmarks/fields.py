"""Conversions between displacement fields, SimpleITK transforms and the common convention.

The common convention (every method's result is converted to it): a dense displacement
field ``u`` on the FIXED grid, array shape grid.shape + (D,) ((z, y, x, 3) in 3D), float64,
vectors in world mm (LPS), meaning fixed point x maps to moving point x + u(x) — the
``SimpleITK.DisplacementFieldTransform`` / ANTs ``Warp`` / elastix ``deformationField``
convention. It includes the initial affine: x + u(x) = φ_total(x).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from cidir.alignment import sitk_transform_from_matrix
from cidir.geometry import Grid, Image, apply_affine


def field_image(field: np.ndarray, grid: Grid) -> sitk.Image:
    """A float64 vector ``sitk.Image`` on ``grid`` from a (grid.shape + (D,)) array in mm."""
    return grid.to_sitk(np.asarray(field, dtype=np.float64), vector=True)


def field_array(image: sitk.Image) -> np.ndarray:
    """(grid.shape + (D,)) float64 array of a vector ``sitk.Image`` (mm, as stored)."""
    return sitk.GetArrayFromImage(sitk.Cast(image, sitk.sitkVectorFloat64)).astype(np.float64)


def field_transform(field: np.ndarray, grid: Grid) -> sitk.DisplacementFieldTransform:
    """A linear-interpolating fixed → moving point transform from a displacement field."""
    return sitk.DisplacementFieldTransform(field_image(field, grid))


def affine_field(matrix: np.ndarray, grid: Grid) -> np.ndarray:
    """u(x) = A x + t − x on ``grid`` for a fixed → moving matrix (mm)."""
    d = grid.ndim
    world = grid.world_points().reshape(-1, d)
    return (apply_affine(matrix, world) - world).reshape(grid.shape + (d,))


def compose_with_affine(field: np.ndarray, matrix: np.ndarray, grid: Grid) -> np.ndarray:
    """Total u of x ↦ M(x + u_def(x)): a deformable field computed against the moving image
    pre-resampled by ``matrix`` onto the fixed grid, composed with that matrix (mm)."""
    d = grid.ndim
    world = grid.world_points().reshape(-1, d)
    inner = world + np.asarray(field, np.float64).reshape(-1, d)
    return (apply_affine(matrix, inner) - world).reshape(grid.shape + (d,))


def resample_to_fixed(moving: Image, fixed_grid: Grid, matrix: np.ndarray,
                      labels: bool = False) -> Image:
    """``moving`` resampled on ``fixed_grid`` at M x (linear, or nearest for labels), 0 outside."""
    ref = sitk.Image([int(s) for s in fixed_grid.size], sitk.sitkUInt8)
    fixed_grid.apply_to_sitk(ref)
    interp = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    out = sitk.Resample(moving.to_sitk(), ref, sitk_transform_from_matrix(matrix), interp, 0.0)
    array = sitk.GetArrayFromImage(out)
    return Image(array.astype(np.int32 if labels else np.float32), fixed_grid, moving.source)


def warp_labels_with_field(labels: Image, field: np.ndarray, grid: Grid) -> np.ndarray:
    """Label map sampled at x + u(x) (nearest neighbour, 0 outside) on ``grid``: (z, y, x)."""
    ref = sitk.Image([int(s) for s in grid.size], sitk.sitkUInt8)
    grid.apply_to_sitk(ref)
    src = labels.with_array(np.asarray(labels.array).astype(np.int32)).to_sitk()
    out = sitk.Resample(src, ref, field_transform(field, grid), sitk.sitkNearestNeighbor, 0)
    return sitk.GetArrayFromImage(out)


def map_points_with_field(points: np.ndarray, field: np.ndarray, grid: Grid) -> np.ndarray:
    """φ(p) = p + u(p) for (N, D) world points (mm), u linearly interpolated."""
    tx = field_transform(field, grid)
    return np.array([tx.TransformPoint([float(v) for v in p]) for p in np.asarray(points)])


def jacobian_determinant(field: np.ndarray, grid: Grid) -> np.ndarray:
    """det ∇φ on ``grid`` by ``sitk.DisplacementFieldJacobianDeterminant`` (finite differences
    in physical units), shape grid.shape."""
    det = sitk.DisplacementFieldJacobianDeterminant(field_image(field, grid), True)
    return sitk.GetArrayFromImage(det).astype(np.float64)
