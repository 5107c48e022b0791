"""A simple, documented lung mask for CT by thresholding (for users without their own masks).

Steps (on the voxel grid, HU input): air = HU < ``threshold`` (default −400); drop the air
connected to the image border (outside the body); keep the two largest remaining 3D connected
components of at least ``min_volume_ml`` (one when the second is under 20% of the first, e.g.
the trachea, or when the lungs touch); close small gaps (vessels) with a binary closing of two
iterations and fill holes.
Labels: 1 and 2 for the two largest components ordered by their centroid along x (the first
voxel axis), or 1 for a single component. Not a substitute for a learned segmentation
(e.g. the ``lungmask`` package): the trachea and main bronchi may be included.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cidir.errors import InputError
from cidir.geometry import Image


def threshold_lung_mask(ct: Image, threshold: float = -400.0,
                        min_volume_ml: float = 50.0) -> Image:
    """Label map (1, 2: lungs; 0 elsewhere) of a CT in HU on its grid."""
    hu = np.asarray(ct.array)
    air = hu < threshold
    labels, _ = ndimage.label(air)
    border = np.unique(np.concatenate([
        labels[0].ravel(), labels[-1].ravel(), labels[:, 0].ravel(), labels[:, -1].ravel(),
        labels[..., 0].ravel(), labels[..., -1].ravel()]))
    inside = air & ~np.isin(labels, border[border > 0])
    components, count = ndimage.label(inside)
    if count == 0:
        raise InputError(f"lung mask of {ct.source}: no air region inside the body below "
                         f"{threshold} HU; supply a mask")
    voxel_ml = float(np.prod(ct.grid.spacing)) / 1000.0
    sizes = ndimage.sum_labels(np.ones_like(components), components, range(1, count + 1))
    order = np.argsort(sizes)[::-1]
    keep = [i + 1 for i in order[:2] if sizes[i] * voxel_ml >= min_volume_ml]
    if not keep:
        raise InputError(f"lung mask of {ct.source}: the largest air region inside the body is "
                         f"{sizes.max() * voxel_ml:.1f} ml (< {min_volume_ml} ml); supply a mask")
    if len(keep) == 2:  # two lungs: the smaller must be a real lung, not the trachea
        if sizes[keep[1] - 1] < 0.2 * sizes[keep[0] - 1]:
            keep = keep[:1]
    structure = ndimage.generate_binary_structure(3, 1) if hu.ndim == 3 else None
    out = np.zeros(hu.shape, np.int32)
    centroids = [ndimage.center_of_mass(components == k)[-1] for k in keep]  # x index
    for label, k in enumerate(np.array(keep)[np.argsort(centroids)], start=1):
        region = ndimage.binary_closing(components == k, structure, iterations=2)
        region = ndimage.binary_fill_holes(region)
        out[region & (out == 0)] = label
    return Image(out, ct.grid, f"{ct.source} threshold lung mask")
