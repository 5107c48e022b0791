"""Helpers shared by the point-file readers and writers (internal): file formats by name,
numbers, lines, grids, dimensions."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.geometry.grid import Grid

FORMATS = ("dirlab", "elastix", "elastix-index", "fcsv", "mrk.json", "csv")


def fmt(value: float) -> str:
    """Shortest text that reads back to the same float64."""
    return repr(float(value))


def guess_format(path: str | os.PathLike) -> str:
    """The point-file format named by ``path``'s extension (InputError when none is)."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith("_xyz.txt"):
        return "dirlab"
    if name.endswith(".mrk.json") or name.endswith(".json"):
        return "mrk.json"
    if name.endswith(".fcsv"):
        return "fcsv"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(".txt"):
        return "elastix"
    raise InputError(
        f"point file {path}: expected a name ending in _xyz.txt (DIR-LAB), .txt (elastix), "
        f".fcsv, .mrk.json or .csv, found '{path.name}' (or pass format=one of {FORMATS})"
    )


def numbers(tokens: list[str], path: Path, lineno: int, what: str) -> list[float]:
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise InputError(
            f"{what} {path}, line {lineno}: expected numbers, found {' '.join(tokens)!r}"
        ) from None
    if not all(np.isfinite(values)):
        raise InputError(
            f"{what} {path}, line {lineno}: expected finite numbers, found {' '.join(tokens)!r}"
        )
    return values


def need_grid(grid: Grid | None, path: Path, what: str, frame: str) -> Grid:
    if grid is None:
        raise InputError(
            f"{what} {path}: the file holds {frame} voxel indices, which need the image grid "
            f"to convert to world mm; found no grid (give the image the points belong to)"
        )
    return grid


def numbered_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (CRLF or LF)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: expected a text file, found binary data") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    return [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def check_dim(points: np.ndarray, grid: Grid | None, path: Path, what: str) -> np.ndarray:
    if grid is not None and points.shape[1] != grid.ndim:
        raise InputError(
            f"{what} {path}: expected {grid.ndim}D points for a {grid.ndim}D image, "
            f"found {points.shape[1]} coordinates per point"
        )
    return points


def read_rows(path: Path, lines: list[tuple[int, str]], what: str, ncols: int | None
               ) -> np.ndarray:
    """Whitespace-separated numeric rows, all with the same column count (2 or 3)."""
    rows: list[list[float]] = []
    for lineno, line in lines:
        tokens = line.split()
        expected = ncols if ncols is not None else (len(rows[0]) if rows else None)
        if expected is None and len(tokens) not in (2, 3):
            raise InputError(
                f"{what} {path}, line {lineno}: expected 2 or 3 coordinates, "
                f"found {len(tokens)} values"
            )
        if expected is not None and len(tokens) != expected:
            raise InputError(
                f"{what} {path}, line {lineno}: expected {expected} coordinates, "
                f"found {len(tokens)} values"
            )
        rows.append(numbers(tokens, path, lineno, what))
    return np.asarray(rows, dtype=np.float64)


def rows_text(rows: np.ndarray, sep: str, fmt=fmt) -> str:
    return "".join(sep.join(fmt(v) for v in row) + "\n" for row in rows)
