"""Plain-text point files: DIR-LAB ``*_xyz.txt`` (1-based voxels), elastix point files
(``index``: 0-based voxels, ``point``: world mm LPS) and CSV (world mm LPS, header ``x,y[,z]``).
Voxel files need the image grid, which converts them to world mm."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.geometry.grid import Grid
from cidir.io.landmarks.common import (
    need_grid,
    numbered_lines,
    numbers,
    read_rows,
    rows_text,
)


def read_dirlab_points(path: str | os.PathLike, grid: Grid | None, what: str = "points"
                       ) -> np.ndarray:
    """DIR-LAB ``*_xyz.txt``: 1-based voxel x y z per line → world mm (LPS) via ``grid``."""
    path = Path(path)
    grid = need_grid(grid, path, what, "1-based")
    lines = numbered_lines(path, what)
    if not lines:
        raise InputError(f"{what} {path}: expected one point per line, found an empty file")
    voxels = read_rows(path, lines, what, grid.ndim) - 1.0
    return grid.voxel_to_world(voxels)


def read_elastix_points(path: str | os.PathLike, grid: Grid | None = None,
                        what: str = "points") -> np.ndarray:
    """elastix point file → world mm (LPS).

    Line 1 is ``index`` (0-based voxel indices; needs ``grid``) or ``point`` (world mm,
    LPS); line 2 the number of points; then one point per line.
    """
    path = Path(path)
    lines = numbered_lines(path, what)
    if not lines:
        raise InputError(f"{what} {path}: expected an elastix point file, found an empty file")
    lineno, first = lines[0]
    kind = first.split()[0].lower()
    if kind not in ("index", "point"):
        raise InputError(
            f"{what} {path}, line {lineno}: expected the elastix header 'index' or 'point', "
            f"found {first.strip()!r} (DIR-LAB 1-based files must be named *_xyz.txt or read "
            f"with format='dirlab')"
        )
    rest = first.split()[1:]
    body = lines[1:]
    if not rest:
        if not body:
            raise InputError(f"{what} {path}: expected the number of points on line 2, "
                             f"found the end of the file")
        lineno, count_line = body[0]
        rest, body = count_line.split(), body[1:]
    try:
        if len(rest) != 1:
            raise ValueError
        count = int(rest[0])
    except ValueError:
        raise InputError(
            f"{what} {path}, line {lineno}: expected the number of points, found "
            f"{' '.join(rest)!r}"
        ) from None
    if count != len(body):
        raise InputError(
            f"{what} {path}, line {lineno}: header says {count} points, found {len(body)}"
        )
    if count == 0:
        raise InputError(f"{what} {path}: expected at least one point, found 0")
    ncols = grid.ndim if grid is not None else None
    values = read_rows(path, body, what, ncols)
    if kind == "index":
        grid = need_grid(grid, path, what, "0-based")
        return grid.voxel_to_world(values)
    return values


def read_csv_points(path: str | os.PathLike, what: str = "points") -> np.ndarray:
    """CSV with a header naming columns ``x,y,z`` (or ``x,y``): world mm, LPS by definition.

    Other columns (ids, labels) are ignored.
    """
    path = Path(path)
    lines = numbered_lines(path, what)
    if not lines:
        raise InputError(f"{what} {path}: expected a header line x,y[,z], found an empty file")
    lineno, header = lines[0]
    names = [c.strip().lower() for c in next(csv.reader([header]))]
    axes = ("x", "y", "z") if "z" in names else ("x", "y")
    if not all(a in names for a in axes):
        raise InputError(
            f"{what} {path}, line {lineno}: expected a header with columns x,y,z (or x,y), "
            f"found {header.strip()!r}"
        )
    ix = [names.index(a) for a in axes]
    rows = []
    for lineno, line in lines[1:]:
        fields = next(csv.reader([line]))
        if len(fields) != len(names):
            raise InputError(
                f"{what} {path}, line {lineno}: expected {len(names)} comma-separated values, "
                f"found {len(fields)}"
            )
        rows.append(numbers([fields[i].strip() for i in ix], path, lineno, what))
    if not rows:
        raise InputError(f"{what} {path}: expected at least one point, found only the header")
    return np.asarray(rows, dtype=np.float64)


def _dirlab_text(points: np.ndarray, grid: Grid) -> str:
    voxels = grid.world_to_voxel(points) + 1.0
    if np.allclose(voxels, np.round(voxels), atol=1e-6):
        return rows_text(np.round(voxels), "\t", lambda v: str(int(v)))
    return rows_text(voxels, "\t", lambda v: f"{v:.4f}")


def _elastix_text(points: np.ndarray, grid: Grid | None, index: bool) -> str:
    values = points
    if index:
        if grid is None:
            raise ValueError("elastix index points: the grid is needed")
        values = grid.world_to_voxel(points)
    header = f"{'index' if index else 'point'}\n{len(points)}\n"
    return header + rows_text(values, " ")


def _csv_text(points: np.ndarray) -> str:
    header = "x,y,z\n" if points.shape[1] == 3 else "x,y\n"
    return header + rows_text(points, ",")
