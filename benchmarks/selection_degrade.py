"""Poor segmentations on purpose: the degradations of the robustness study (docs/selection.md,
issue 11 item 4). Each takes a pair's (fixed, moving) selection label maps and returns
degraded ones; the evaluation labels, landmarks and true field are never touched.

- ``erode k`` / ``dilate k``: every label eroded / grown by k voxels (both images; a grown
  label takes background voxels only, the nearest label wins);
- ``drop largest``: the label with the most fixed voxels removed from both images;
- ``shift s mm``: the moving labels displaced by s mm along the first world axis (their grid
  origin moved: one image's segmentation misaligned with its image);
- ``boundary noise``: each voxel on a label boundary (both images) takes, with probability
  1/2, the label of a random neighbour (seeded).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage

from cidir.geometry import Grid, Image

Degrade = Callable[[Image, Image, list[int]], tuple[Image, Image]]


def _erode(labels: Image, k: int) -> Image:
    out = np.zeros_like(labels.array)
    for value in np.unique(labels.array):
        if value == 0:
            continue
        keep = ndimage.binary_erosion(labels.array == value, iterations=k)
        out[keep] = value
    return labels.with_array(out)


def _dilate(labels: Image, k: int) -> Image:
    array = labels.array
    distance, index = ndimage.distance_transform_edt(array == 0, return_indices=True)
    nearest = array[tuple(index)]
    grow = (array == 0) & (distance <= k)
    return labels.with_array(np.where(grow, nearest, array))


def _boundary_noise(labels: Image, seed: int) -> Image:
    array = labels.array
    rng = np.random.default_rng(seed)
    high = ndimage.maximum_filter(array, size=3)
    low = ndimage.minimum_filter(array, size=3)
    boundary = np.flatnonzero(((high != low) & (rng.random(array.shape) < 0.5)).reshape(-1))
    coords = np.array(np.unravel_index(boundary, array.shape))
    offset = rng.integers(-1, 2, size=coords.shape)
    source = np.clip(coords + offset, 0, np.array(array.shape)[:, None] - 1)
    out = array.copy().reshape(-1)
    out[boundary] = array[tuple(source)]
    return labels.with_array(out.reshape(array.shape))


def _shift(labels: Image, mm: float) -> Image:
    g = labels.grid
    origin = np.asarray(g.origin, float) + mm * np.asarray(g.direction_matrix)[:, 0]
    grid = Grid(g.size, g.spacing, tuple(float(v) for v in origin), g.direction)
    return Image(labels.array, grid, labels.source)


def _drop_largest(fixed: Image, moving: Image, labels: list[int]) -> tuple[Image, Image]:
    sizes = {v: int((fixed.array == v).sum()) for v in labels}
    drop = max(sizes, key=sizes.__getitem__)
    return (fixed.with_array(np.where(fixed.array == drop, 0, fixed.array)),
            moving.with_array(np.where(moving.array == drop, 0, moving.array)))


def degradations() -> dict[str, Degrade]:
    """Name → degradation, in the order of the study's table."""
    out: dict[str, Degrade] = {"none": lambda f, m, _: (f, m)}
    for k in (1, 2, 3):
        out[f"erode {k} vox"] = lambda f, m, _, k=k: (_erode(f, k), _erode(m, k))
    for k in (1, 2, 3):
        out[f"dilate {k} vox"] = lambda f, m, _, k=k: (_dilate(f, k), _dilate(m, k))
    out["drop largest label"] = _drop_largest
    for s in (1.0, 2.0, 3.0):
        out[f"shift {s:g} mm"] = lambda f, m, _, s=s: (f, _shift(m, s))
    out["boundary noise"] = lambda f, m, _: (_boundary_noise(f, 1), _boundary_noise(m, 2))
    return out
