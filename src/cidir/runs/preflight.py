"""Checks that a pair can be registered at all, made before training.

- Each image is 2D or a true 3D volume: a 3D image with a single slice (a size-1 axis) is
  refused, since it has no extent along that axis to register.
- The images overlap in world space: at least :data:`MIN_OVERLAP_FRACTION` of the fixed
  image's voxels (those of the fixed mask when given), mapped by the initial transform, fall
  inside the moving image's extent. A flipped direction, a negative or wrong spacing or a
  wrong origin usually leave the images apart and are caught here.
- The moving image resolves the shared region: the region spans at least one moving voxel
  along every axis (a 1e6 mm spacing makes the whole fixed image fall inside one voxel).
"""

from __future__ import annotations

import numpy as np

from cidir.errors import InputError
from cidir.geometry import Image
from cidir.geometry.affine import apply_affine

MIN_OVERLAP_FRACTION = 0.25  # of the fixed image (or mask) inside the moving image
MAX_CHECK_POINTS = 20000  # fixed voxels used to estimate the overlap (an even subsample)
AXES = "xyz"


def check_volume(image: Image, what: str) -> None:
    """InputError for a 3D image with a single slice."""
    if image.ndim == 3 and min(image.grid.size) == 1:
        axis = AXES[image.grid.size.index(1)]
        raise InputError(
            f"{what} {image.source}: expected a 3D volume, found a single slice (size "
            f"{image.grid.size}, one voxel along {axis}); give a volume, or the slice as a 2D "
            "image for 2D registration")


def _fixed_points(fixed: Image, fixed_mask: Image | None) -> np.ndarray:
    if fixed_mask is not None:
        flat = np.flatnonzero(np.asarray(fixed_mask.array).reshape(-1))
    else:
        flat = np.arange(fixed.grid.num_voxels)
    if flat.size > MAX_CHECK_POINTS:
        flat = flat[np.linspace(0, flat.size - 1, MAX_CHECK_POINTS).astype(np.int64)]
    return fixed.grid.world_points(flat)


def check_overlap(fixed: Image, moving: Image, init_matrix: np.ndarray,
                  fixed_mask: Image | None = None, init: str = "none") -> float:
    """The fraction of the fixed image (or mask) inside the moving image after the initial
    transform; InputError below :data:`MIN_OVERLAP_FRACTION` or when the shared region spans
    less than one moving voxel along an axis."""
    d = fixed.ndim
    world = _fixed_points(fixed, fixed_mask)
    mapped = apply_affine(np.asarray(init_matrix, float), world)
    inside = np.asarray(moving.grid.contains_world(mapped))
    fraction = float(inside.mean()) if inside.size else 0.0
    region = "fixed mask" if fixed_mask is not None else "fixed image"
    if fraction < MIN_OVERLAP_FRACTION:
        raise InputError(
            f"moving image {moving.source}: {100 * fraction:.0f}% of the {region} falls inside "
            f"it after the initial transform ({init}), expected at least "
            f"{100 * MIN_OVERLAP_FRACTION:.0f}%: check the images' origin, spacing and "
            f"direction (fixed: {fixed.grid.describe(direction=True)}; moving: "
            f"{moving.grid.describe(direction=True)}) or give "
            "--init moments|rigid|affine|FILE")
    voxels = moving.grid.world_to_voxel(mapped[inside])
    span = voxels.max(axis=0) - voxels.min(axis=0)
    thin = [AXES[k] for k in range(d) if span[k] < 1.0]
    if thin:
        raise InputError(
            f"moving image {moving.source}: the region it shares with the {region} spans less "
            f"than one of its voxels along {', '.join(thin)} (spacing "
            f"{_vector(moving.grid.spacing)} mm): check its spacing")
    return fraction


def _vector(values) -> str:
    return "(" + ", ".join(f"{v:g}" for v in values) + ")"
