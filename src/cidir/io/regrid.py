"""Label maps and masks on another grid than their image's: resampled onto it, with a note.

A mask or label map drawn on another grid than its image (a coarser export, a crop, a
resampled segmentation) is resampled onto the image's grid in world space (mm, LPS; the
identity transform, nearest neighbour, 0 outside it, as ``sitk.Resample``), and a warning
naming the file and both grids goes to the ``cidir`` logger (the CLI prints it on stderr).
A map that no voxel of the image's grid falls inside, or whose nonzero voxels all fall
outside it, is refused (InputError). The file on disk is not changed: runs record it (path,
SHA-256) and read it again the same way.
"""

from __future__ import annotations

import logging

import numpy as np

from cidir.errors import InputError
from cidir.geometry import Grid, Image

GRID_ATOL_MM = 1e-3
log = logging.getLogger(__name__)


def _grids(image: Image, reference: Grid) -> tuple[str, str]:
    """(the map's grid, the reference grid) described on one line each."""
    return image.grid.describe(direction=True), reference.describe(direction=True)


def resample_nearest(image: Image, reference: Grid) -> tuple[Image, float]:
    """``image`` (labels ≥ 0 or a mask) on ``reference`` by nearest neighbour in world space,
    0 outside it; and the fraction of ``reference``'s voxels that fall inside ``image``."""
    import SimpleITK as sitk

    source = image.grid.to_sitk(np.asarray(image.array, dtype=np.int32))
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize(reference.size)
    resampler.SetOutputOrigin(reference.origin)
    resampler.SetOutputSpacing(reference.spacing)
    resampler.SetOutputDirection(reference.direction)
    resampler.SetTransform(sitk.Transform(reference.ndim, sitk.sitkIdentity))
    resampler.SetInterpolator(sitk.sitkNearestNeighbor)
    resampler.SetDefaultPixelValue(-1)  # labels are >= 0: -1 marks "outside the map"
    array = sitk.GetArrayFromImage(resampler.Execute(source))
    inside = array >= 0
    array[~inside] = 0
    fraction = float(inside.mean()) if inside.size else 0.0
    return Image(array.astype(image.array.dtype), reference, image.source), fraction


def onto_grid(image: Image, reference: Grid, what: str) -> Image:
    """``image`` itself when it lies on ``reference`` (within 1e-3 mm), else resampled onto
    it (nearest) with a logged warning; InputError when the dimensions differ, no voxel of
    ``reference`` falls inside ``image``, or none of its nonzero voxels do."""
    if image.grid.same_as(reference, atol=GRID_ATOL_MM):
        return image
    found, expected = _grids(image, reference)
    source = f" {image.source}" if image.source else ""
    if image.ndim != reference.ndim:
        raise InputError(f"{what}{source}: expected a {reference.ndim}D map on the reference "
                         f"grid [{expected}], found {image.ndim}D [{found}]")
    resampled, fraction = resample_nearest(image, reference)
    if fraction == 0.0:
        raise InputError(f"{what}{source}: expected a map overlapping its image's grid "
                         f"[{expected}], found it entirely outside [{found}]; check its "
                         "origin, spacing and direction")
    if np.any(image.array) and not np.any(resampled.array):
        raise InputError(f"{what}{source}: expected nonzero voxels on its image's grid "
                         f"[{expected}], found none once resampled onto it from [{found}]")
    log.warning("%s%s: on another grid [%s] than its image [%s]; resampled onto the image's "
                "grid (nearest neighbour, world space; %.0f%% of the image's voxels lie "
                "inside it, 0 elsewhere)", what, source, found, expected, 100 * fraction)
    return resampled
