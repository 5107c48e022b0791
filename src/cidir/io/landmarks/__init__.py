"""Reading and writing point (landmark) files.

Inside cidir, points are always **world mm, LPS**, numpy arrays (N, D) float64, D = 2 or 3,
coordinates in (x, y[, z]) order. Each file format carries its own frame; the readers and
writers below convert at the boundary:

============================  ====================================================
format (extension)            frame in the file
============================  ====================================================
DIR-LAB (``*_xyz.txt``)       voxel index, **1-based**, x y z (needs a grid)
elastix ``index`` (``.txt``)  voxel index, **0-based** (needs a grid)
elastix ``point`` (``.txt``)  world mm, LPS (ITK's physical frame)
3D Slicer ``.fcsv``           world mm, LPS or RAS as its header states
3D Slicer ``.mrk.json``       world mm, LPS or RAS as ``coordinateSystem`` states
CSV (``.csv``)                world mm, LPS, columns ``x,y[,z]`` named in a header
============================  ====================================================

Malformed files raise :class:`~cidir.errors.InputError` naming the file and the line.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.geometry.frames import World
from cidir.geometry.grid import Grid
from cidir.io.atomic import write_text
from cidir.io.landmarks.common import FORMATS, check_dim, guess_format, need_grid
from cidir.io.landmarks.slicer import (
    _drop_zero_z,
    _fcsv_text,
    _mrk_json_text,
    read_fcsv,
    read_mrk_json,
)
from cidir.io.landmarks.text import (
    _csv_text,
    _dirlab_text,
    _elastix_text,
    read_csv_points,
    read_dirlab_points,
    read_elastix_points,
)

__all__ = [
    "FORMATS",
    "check_pairs",
    "guess_format",
    "read_csv_points",
    "read_dirlab_points",
    "read_elastix_points",
    "read_fcsv",
    "read_mrk_json",
    "read_points",
    "write_points",
]


def read_points(path: str | os.PathLike, grid: Grid | None = None, what: str = "points",
                format: str | None = None) -> World[np.ndarray]:
    """Read a point file into world mm, LPS: array (N, D) float64.

    The format comes from ``format`` (one of :data:`FORMATS`) or the file name (see the
    module docstring). ``grid`` is the image the points belong to: needed for voxel-index
    files (DIR-LAB, elastix ``index``) and used to check the dimension.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: expected a point file, found no such file")
    fmt = format or guess_format(path)
    if fmt == "dirlab":
        points = read_dirlab_points(path, grid, what)
    elif fmt in ("elastix", "elastix-index"):
        points = read_elastix_points(path, grid, what)
    elif fmt == "fcsv":
        points = _drop_zero_z(read_fcsv(path, what), grid)
    elif fmt == "mrk.json":
        points = _drop_zero_z(read_mrk_json(path, what), grid)
    elif fmt == "csv":
        points = read_csv_points(path, what)
    else:
        raise InputError(f"{what} {path}: expected format one of {FORMATS}, found {fmt!r}")
    return check_dim(points, grid, path, what)


def write_points(path: str | os.PathLike, points_world: World[np.ndarray],
                 grid: Grid | None = None,
                 format: str | None = None) -> None:
    """Write world mm (LPS) points (N, D) atomically; the file's frame depends on the format.

    By extension: ``.csv`` (header x,y[,z], world mm LPS), ``.fcsv`` (Slicer 4.11+, LPS),
    ``.mrk.json`` (LPS), ``*_xyz.txt`` (DIR-LAB, 1-based voxel; needs ``grid``), other
    ``.txt`` (elastix ``point``, world mm LPS). ``format="elastix-index"`` writes 0-based
    voxel indices and ``format="dirlab"`` 1-based voxel indices (integers when all are
    integral, else 4 decimals); both need ``grid``. Slicer files are 3D: 2D points get z = 0.
    """
    path = Path(path)
    points = np.asarray(points_world, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] not in (2, 3):
        raise InputError(f"points for {path}: expected an (N, 2|3) array, found {points.shape}")
    if not np.all(np.isfinite(points)):
        raise InputError(f"points for {path}: expected finite values, found NaN or infinity")
    fmt = format or guess_format(path)
    if fmt in ("dirlab", "elastix-index"):
        grid = need_grid(grid, path, "points", "1-based" if fmt == "dirlab" else "0-based")
    if grid is not None:
        check_dim(points, grid, path, "points")
    if fmt == "dirlab":
        text = _dirlab_text(points, need_grid(grid, path, "points", "1-based"))
    elif fmt in ("elastix", "elastix-index"):
        text = _elastix_text(points, grid, index=fmt == "elastix-index")
    elif fmt == "fcsv":
        text = _fcsv_text(points)
    elif fmt == "mrk.json":
        text = _mrk_json_text(points)
    elif fmt == "csv":
        text = _csv_text(points)
    else:
        raise InputError(f"points for {path}: expected format one of {FORMATS}, found {fmt!r}")
    write_text(path, text)


def check_pairs(fixed_pts: np.ndarray, moving_pts: np.ndarray, what: str) -> None:
    """Raise InputError unless the two point sets have the same count and dimension."""
    a, b = np.asarray(fixed_pts), np.asarray(moving_pts)
    if a.ndim != 2 or b.ndim != 2 or a.shape != b.shape:
        raise InputError(
            f"{what}: expected corresponding fixed and moving points of the same shape, "
            f"found {a.shape[0] if a.ndim else 0} fixed points of shape {a.shape} and "
            f"{b.shape[0] if b.ndim else 0} moving points of shape {b.shape}"
        )
