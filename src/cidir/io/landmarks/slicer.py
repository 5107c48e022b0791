"""3D Slicer point files: markups ``.fcsv`` and ``.mrk.json`` (world mm, LPS or RAS as the file
states; RAS is converted by negating x and y). Slicer points are 3D: 2D points get z = 0 when
written, and read back as 2D for a 2D grid when every z is 0."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import numpy as np

from cidir.errors import InputError
from cidir.geometry.grid import Grid
from cidir.io.landmarks.common import fmt, numbered_lines, numbers

# 3D Slicer's legacy numeric coordinate systems in .fcsv headers
_FCSV_LEGACY = {"0": "RAS", "1": "LPS", "2": "IJK"}
_MRK_SCHEMA = (
    "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/"
    "Resources/Schema/markups-schema-v1.0.3.json#"
)


def _drop_zero_z(points: np.ndarray, grid: Grid | None) -> np.ndarray:
    """Slicer files are 3D; with a 2D grid, points with z = 0 become 2D."""
    if grid is not None and grid.ndim == 2 and points.shape[1] == 3 and not points[:, 2].any():
        return points[:, :2]
    return points


def _pad_z(points: np.ndarray) -> np.ndarray:
    if points.shape[1] == 2:
        return np.concatenate([points, np.zeros((len(points), 1))], axis=1)
    return points


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
    for lineno, line in numbered_lines(path, what):
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
        rows.append(numbers([fields[i] for i in ix], path, lineno, what))
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


def _fcsv_text(points: np.ndarray) -> str:
    out = io.StringIO()
    out.write("# Markups fiducial file version = 4.11\n# CoordinateSystem = LPS\n")
    out.write("# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID,"
              "pixelspace,pixelStr\n")
    for i, (x, y, z) in enumerate(_pad_z(points), 1):
        out.write(f"{i},{fmt(x)},{fmt(y)},{fmt(z)},0,0,0,1,1,1,0,F-{i},,,,\n")
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
