"""Shared input preparation for the peer tools (elastix, ANTs, SimpleITK demons).

Every peer registers the fixed image to the moving image *pre-resampled onto the fixed grid
by the pair's common initial affine* (linear interpolation). A peer's deformable field u_p
(fixed grid, mm, fixed → pre-aligned moving) is then composed with that affine:
φ(x) = M (x + u_p(x)) (see :func:`benchmarks.fields.compose_with_affine`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from benchmarks.fields import compose_with_affine, resample_to_fixed
from benchmarks.pairs import PairData
from cidir.geometry import Image
from cidir.io.images import write_image


def prealigned_moving(pair: PairData) -> Image:
    """The moving image on the fixed grid at M x (the original when M = I on the same grid)."""
    if pair.init_matrix is None and pair.moving.grid.same_as(pair.fixed.grid):
        return pair.moving
    return resample_to_fixed(pair.moving, pair.fixed.grid, pair.init)


def total_field(pair: PairData, peer_field: np.ndarray) -> np.ndarray:
    """The common-convention field of a peer's field computed on the pre-aligned moving."""
    if pair.init_matrix is None:
        return np.asarray(peer_field, np.float64)
    return compose_with_affine(peer_field, pair.init, pair.fixed.grid)


def write_inputs(pair: PairData, folder: Path) -> dict[str, Path | None]:
    """fixed.nii.gz, moving.nii.gz (pre-aligned, float32) and mask.nii.gz (uint8) in folder."""
    paths: dict[str, Path | None] = {"fixed": folder / "fixed.nii.gz",
                                     "moving": folder / "moving.nii.gz", "mask": None}
    write_image(pair.fixed, paths["fixed"], dtype=np.float32)
    write_image(prealigned_moving(pair), paths["moving"], dtype=np.float32)
    if pair.fixed_mask is not None:
        paths["mask"] = folder / "mask.nii.gz"
        write_image(pair.fixed_mask.with_array((pair.fixed_mask.array > 0).astype(np.uint8)),
                    paths["mask"], dtype=np.uint8)
    return paths


def temp_folder() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="cidir-bench-")
