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

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.geometry.grid import Grid
from cidir.io.atomic import write_text

FORMATS = ("dirlab", "elastix", "elastix-index", "fcsv", "mrk.json", "csv")
# 3D Slicer's legacy numeric coordinate systems in .fcsv headers
_FCSV_LEGACY = {"0": "RAS", "1": "LPS", "2": "IJK"}
_MRK_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)


# ---------------------------------------------------------------------- helpers
def _fmt(value: float) -> str:
    """Shortest text that reads back to the same float64."""
    return repr(float(value))


def _guess_format(path: Path) -> str:
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


def guess_format(path: str | os.PathLike) -> str:
    """The point-file format named by ``path``'s extension (InputError when none is)."""
    return _guess_format(Path(path))


def _numbers(tokens: list[str], path: Path, lineno: int, what: str) -> list[float]:
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


def _need_grid(grid: Grid | None, path: Path, what: str, frame: str) -> Grid:
    if grid is None:
        raise InputError(
            f"{what} {path}: the file holds {frame} voxel indices, which need the image grid "
            f"to convert to world mm; found no grid (give the image the points belong to)"
        )
    return grid


def _numbered_lines(path: Path, what: str) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (CRLF or LF)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: expected a text file, found binary data") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    return [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]


def _check_dim(points: np.ndarray, grid: Grid | None, path: Path, what: str) -> np.ndarray:
    if grid is not None and points.shape[1] != grid.ndim:
        raise InputError(
            f"{what} {path}: expected {grid.ndim}D points for a {grid.ndim}D image, "
            f"found {points.shape[1]} coordinates per point"
        )
    return points


def _drop_zero_z(points: np.ndarray, grid: Grid | None) -> np.ndarray:
    """Slicer files are 3D; with a 2D grid, points with z = 0 become 2D."""
    if grid is not None and grid.ndim == 2 and points.shape[1] == 3 and not points[:, 2].any():
        return points[:, :2]
    return points


def _pad_z(points: np.ndarray) -> np.ndarray:
    if points.shape[1] == 2:
        return np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    return points


# ---------------------------------------------------------------------- readers
def _read_rows(path: Path, lines: list[tuple[int, str]], what: str, ncols: int | None
               ) -> np.ndarray:
    """Whitespace-separated numeric rows, all with the same column count (2 or 3)."""
    rows = []
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
        rows.append(_numbers(tokens, path, lineno, what))
    return np.asarray(rows, dtype=np.float64)


def read_dirlab_points(path: str | os.PathLike, grid: Grid, what: str = "points"
                       ) -> np.ndarray:
    """DIR-LAB ``*_xyz.txt``: 1-based voxel x y z per line → world mm (LPS) via ``grid``."""
    path = Path(path)
    grid = _need_grid(grid, path, what, "1-based")
    lines = _numbered_lines(path, what)
    if not lines:
        raise InputError(f"{what} {path}: expected one point per line, found an empty file")
    voxels = _read_rows(path, lines, what, grid.ndim) - 1.0
    return grid.voxel_to_world(voxels)


def read_elastix_points(path: str | os.PathLike, grid: Grid | None = None,
                        what: str = "points") -> np.ndarray:
    """elastix point file → world mm (LPS).

    Line 1 is ``index`` (0-based voxel indices; needs ``grid``) or ``point`` (world mm,
    LPS); line 2 the number of points; then one point per line.
    """
    path = Path(path)
    lines = _numbered_lines(path, what)
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
    values = _read_rows(path, body, what, ncols)
    if kind == "index":
        grid = _need_grid(grid, path, what, "0-based")
        return grid.voxel_to_world(values)
    return values


def _fcsv_system(value: str, path: Path, lineno: int, what: str) -> str:
    system = _FCSV_LEGACY.get(value.strip(), value.strip().upper())
    if system not in ("LPS", "RAS"):
        raise InputError(
            f"{what} {path}, line {lineno}: expected CoordinateSystem LPS or RAS, "
            f"found {value.strip()!r}"
        )
    return system


def read_fcsv(path: str | os.PathLike, what: str = "points") -> np.ndarray:
    """3D Slicer markups ``.fcsv`` → world mm, LPS (RAS files have x and y negated).

    The frame is the ``# CoordinateSystem`` header (LPS, RAS, or legacy 0 = RAS, 1 = LPS);
    a file without it is RAS, as 3D Slicer assumes. Columns come from ``# columns`` when
    present, else id, x, y, z.
    """
    path = Path(path)
    system, columns = "RAS", ["id", "x", "y", "z"]
    rows = []
    for lineno, line in _numbered_lines(path, what):
        if line.startswith("#"):
            key, _, value = line[1:].partition("=")
            key = key.strip().lower()
            if key == "coordinatesystem":
                system = _fcsv_system(value, path, lineno, what)
            elif key == "columns":
                columns = [c.strip().lower() for c in value.split(",")]
            continue
        fields = next(csv.reader([line]))
        try:
            ix = [columns.index(c) for c in ("x", "y", "z")]
        except ValueError:
            raise InputError(
                f"{what} {path}: expected columns x, y, z in the '# columns' header, "
                f"found {columns}"
            ) from None
        if len(fields) <= max(ix):
            raise InputError(
                f"{what} {path}, line {lineno}: expected at least {max(ix) + 1} "
                f"comma-separated columns, found {len(fields)}"
            )
        rows.append(_numbers([fields[i] for i in ix], path, lineno, what))
    if not rows:
        raise InputError(f"{what} {path}: expected at least one point, found none")
    points = np.asarray(rows, dtype=np.float64)
    if system == "RAS":
        points[:, :2] *= -1.0
    return points


def read_mrk_json(path: str | os.PathLike, what: str = "points") -> np.ndarray:
    """3D Slicer ``.mrk.json`` (first markup) → world mm, LPS (RAS: x and y negated).

    The frame is ``markups[0].coordinateSystem`` (LPS when absent, the schema default).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{what} {path}, line {exc.lineno}: expected JSON, found a syntax error ({exc.msg})"
        ) from None
    except UnicodeDecodeError:
        raise InputError(f"{what} {path}: expected a text file, found binary data") from None
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot read it ({exc.strerror or exc})") from None
    markups = data.get("markups") if isinstance(data, dict) else None
    if not markups or not isinstance(markups, list) or not isinstance(markups[0], dict):
        raise InputError(f"{what} {path}: expected a 'markups' list, found none")
    markup = markups[0]
    system = str(markup.get("coordinateSystem", "LPS")).upper()
    if system not in ("LPS", "RAS"):
        raise InputError(
            f"{what} {path}: expected coordinateSystem LPS or RAS, found {system!r}"
        )
    units = str(markup.get("coordinateUnits", "mm"))
    if units != "mm":
        raise InputError(f"{what} {path}: expected coordinateUnits 'mm', found {units!r}")
    control = markup.get("controlPoints") or []
    rows = []
    for i, point in enumerate(control):
        position = point.get("position") if isinstance(point, dict) else None
        if not isinstance(position, list) or len(position) != 3:
            raise InputError(
                f"{what} {path}: expected controlPoints[{i}].position with 3 numbers, "
                f"found {position!r}"
            )
        try:
            values = [float(v) for v in position]
        except (TypeError, ValueError):
            values = [float("nan")]
        if not np.all(np.isfinite(values)):
            raise InputError(
                f"{what} {path}: expected finite numbers in controlPoints[{i}].position, "
                f"found {position!r}"
            )
        rows.append(values)
    if not rows:
        raise InputError(f"{what} {path}: expected at least one control point, found none")
    points = np.asarray(rows, dtype=np.float64)
    if system == "RAS":
        points[:, :2] *= -1.0
    return points


def read_csv_points(path: str | os.PathLike, what: str = "points") -> np.ndarray:
    """CSV with a header naming columns ``x,y,z`` (or ``x,y``): world mm, LPS by definition.

    Other columns (ids, labels) are ignored.
    """
    path = Path(path)
    lines = _numbered_lines(path, what)
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
        rows.append(_numbers([fields[i].strip() for i in ix], path, lineno, what))
    if not rows:
        raise InputError(f"{what} {path}: expected at least one point, found only the header")
    return np.asarray(rows, dtype=np.float64)


def read_points(path: str | os.PathLike, grid: Grid | None = None, what: str = "points",
                format: str | None = None) -> np.ndarray:
    """Read a point file into world mm, LPS: array (N, D) float64.

    The format comes from ``format`` (one of :data:`FORMATS`) or the file name (see the
    module docstring). ``grid`` is the image the points belong to: needed for voxel-index
    files (DIR-LAB, elastix ``index``) and used to check the dimension.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} {path}: expected a point file, found no such file")
    fmt = format or _guess_format(path)
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
    return _check_dim(points, grid, path, what)


# ---------------------------------------------------------------------- writers
def _rows_text(rows: np.ndarray, sep: str, fmt=_fmt) -> str:
    return "".join(sep.join(fmt(v) for v in row) + "\n" for row in rows)


def _dirlab_text(points: np.ndarray, grid: Grid) -> str:
    voxels = grid.world_to_voxel(points) + 1.0
    if np.allclose(voxels, np.round(voxels), atol=1e-6):
        return _rows_text(np.round(voxels), "\t", lambda v: str(int(v)))
    return _rows_text(voxels, "\t", lambda v: f"{v:.4f}")


def _elastix_text(points: np.ndarray, grid: Grid | None, index: bool) -> str:
    values = grid.world_to_voxel(points) if index else points
    header = f"{'index' if index else 'point'}\n{len(points)}\n"
    return header + _rows_text(values, " ")


def _fcsv_text(points: np.ndarray) -> str:
    out = io.StringIO()
    out.write("# Markups fiducial file version = 4.11\n# CoordinateSystem = LPS\n")
    out.write("# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID,"
              "pixelspace,pixelStr\n")
    for i, (x, y, z) in enumerate(_pad_z(points), 1):
        out.write(f"{i},{_fmt(x)},{_fmt(y)},{_fmt(z)},0,0,0,1,1,1,0,F-{i},,,,\n")
    return out.getvalue()


def _mrk_json_text(points: np.ndarray) -> str:
    control = [
        {
            "id": str(i),
            "label": f"F-{i}",
            "position": [float(v) for v in p],
            "orientation": [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0],
            "selected": True,
            "locked": False,
            "visibility": True,
            "positionStatus": "defined",
        }
        for i, p in enumerate(_pad_z(points), 1)
    ]
    data = {
        "@schema": _MRK_SCHEMA,
        "markups": [{
            "type": "Fiducial",
            "coordinateSystem": "LPS",
            "coordinateUnits": "mm",
            "controlPoints": control,
        }],
    }
    return json.dumps(data, indent=2) + "\n"


def _csv_text(points: np.ndarray) -> str:
    header = "x,y,z\n" if points.shape[1] == 3 else "x,y\n"
    return header + _rows_text(points, ",")


def write_points(path: str | os.PathLike, points_world, grid: Grid | None = None,
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
    fmt = format or _guess_format(path)
    if fmt in ("dirlab", "elastix-index"):
        grid = _need_grid(grid, path, "points", "1-based" if fmt == "dirlab" else "0-based")
    if grid is not None:
        _check_dim(points, grid, path, "points")
    if fmt == "dirlab":
        text = _dirlab_text(points, grid)
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
