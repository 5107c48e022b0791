"""A simple, documented lung mask for CT by thresholding (for users without their own masks).

Steps (on the voxel grid, HU input): air = HU < ``threshold`` (default −400); drop the air
connected to the border of its axial slice (outside the body; done per slice so that lungs
cut by the first or last slice are kept); keep the two largest remaining 3D connected
components of at least ``min_volume_ml`` (one when the second is under 20% of the first, e.g.
the trachea, or when the lungs touch); close small gaps (vessels) with a binary closing of two
iterations and fill holes.
Labels: 1 and 2 for the two lungs ordered by their centroid along x (the first voxel axis);
lungs joined into one component are split at the mediastinum (the x column with the fewest
lung voxels in the middle half). Not a substitute for a learned segmentation
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
    inside = np.zeros_like(air)
    for k, plane in enumerate(air if hu.ndim == 3 else air[None]):
        labels, _ = ndimage.label(plane)  # outside air touches the border of every slice
        border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
        keep = plane & ~np.isin(labels, border[border > 0])
        if hu.ndim == 3:
            inside[k] = keep
        else:
            inside = keep
    components, count = ndimage.label(inside)
    if count == 0:
        raise InputError(f"lung mask of {ct.source}: no air region inside the body below "
                         f"{threshold} HU; supply a mask")
    voxel_ml = ct.grid.voxel_volume / 1000.0
    sizes = ndimage.sum_labels(np.ones_like(components), components, range(1, count + 1))
    order = np.argsort(sizes)[::-1]
    keep = [i + 1 for i in order[:2] if sizes[i] * voxel_ml >= min_volume_ml]
    if not keep:
        raise InputError(f"lung mask of {ct.source}: the largest air region inside the body is "
                         f"{sizes.max() * voxel_ml:.1f} ml (< {min_volume_ml} ml); supply a mask")
    if len(keep) == 2:  # two lungs: the smaller must be a real lung, not the trachea
        if sizes[keep[1] - 1] < 0.2 * sizes[keep[0] - 1]:
            keep = keep[:1]
    structure = ndimage.generate_binary_structure(hu.ndim, 1)
    regions = []
    for k in keep:
        region = ndimage.binary_closing(components == k, structure, iterations=2)
        regions.append(ndimage.binary_fill_holes(region))
    if len(regions) == 1:
        regions = _split_at_mediastinum(regions[0])
    out = np.zeros(hu.shape, np.int32)
    centroids = [np.nonzero(r)[-1].mean() for r in regions]  # mean x index
    for label, i in enumerate(np.argsort(centroids), start=1):
        out[regions[i] & (out == 0)] = label
    return Image(out, ct.grid, f"{ct.source} threshold lung mask")


def _split_at_mediastinum(region: np.ndarray) -> list[np.ndarray]:
    """Two lungs joined (by the airways or touching) → split at the x column with the fewest
    voxels between the region's 25th and 75th x percentiles (the mediastinum)."""
    x = np.nonzero(region)[-1]
    lo, hi = np.percentile(x, [25, 75]).astype(int)
    counts = region.reshape(-1, region.shape[-1]).sum(axis=0)
    if hi <= lo:
        return [region]
    cut = lo + int(np.argmin(counts[lo:hi + 1]))
    left, right = region.copy(), region.copy()
    left[..., cut:] = False
    right[..., :cut] = False
    return [r for r in (left, right) if r.any()]
