"""Point files: every format round-trips world mm (LPS); frames and malformed files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cidir.errors import InputError
from cidir.geometry.grid import Grid
from cidir.io.landmarks import check_pairs, read_points, write_points


def rotated_grid(ndim: int = 3) -> Grid:
    c, s = math.cos(0.4), math.sin(0.4)
    if ndim == 2:
        return Grid((40, 30), (0.7, 1.9), (-3.5, 11.0), (c, -s, s, c))
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return Grid((64, 50, 30), (0.8, 1.3, 2.5), (-12.5, 40.0, 3.25), tuple((rz @ rx).ravel()))


def world_points(grid: Grid, n: int = 12, integral: bool = False, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    voxels = rng.uniform(0, np.asarray(grid.size) - 1, size=(n, grid.ndim))
    if integral:
        voxels = np.round(voxels)
    return grid.voxel_to_world(voxels)


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize(
    "name, fmt, atol",
    [
        ("p.csv", None, 1e-9),
        ("p.fcsv", None, 1e-9),
        ("p.mrk.json", None, 1e-9),
        ("p.txt", None, 1e-9),  # elastix "point"
        ("p.txt", "elastix-index", 1e-9),
        ("case_xyz.txt", None, 1e-3),  # DIR-LAB, 4 decimals of a voxel
        ("p.pts", "dirlab", 1e-3),
    ],
)
def test_round_trip(tmp_path, ndim, name, fmt, atol):
    grid = rotated_grid(ndim)
    points = world_points(grid)
    path = tmp_path / name
    write_points(path, points, grid=grid, format=fmt)
    back = read_points(path, grid=grid, format=fmt)
    assert back.dtype == np.float64 and back.shape == points.shape
    np.testing.assert_allclose(back, points, atol=atol)
    assert [p.name for p in tmp_path.iterdir()] == [name]  # atomic: no temp file left


def test_dirlab_integral_points_written_as_integers(tmp_path):
    grid = rotated_grid()
    points = world_points(grid, integral=True)
    write_points(tmp_path / "a_xyz.txt", points, grid=grid)
    first = (tmp_path / "a_xyz.txt").read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert all(t.isdigit() for t in first)
    np.testing.assert_allclose(read_points(tmp_path / "a_xyz.txt", grid), points, atol=1e-9)


def test_elastix_files_state_their_frame(tmp_path):
    grid = rotated_grid()
    points = world_points(grid, n=3)
    write_points(tmp_path / "w.txt", points)
    write_points(tmp_path / "i.txt", points, grid=grid, format="elastix-index")
    w = (tmp_path / "w.txt").read_text(encoding="utf-8").splitlines()
    i = (tmp_path / "i.txt").read_text(encoding="utf-8").splitlines()
    assert w[:2] == ["point", "3"] and i[:2] == ["index", "3"]
    np.testing.assert_allclose([float(v) for v in i[2].split()], grid.world_to_voxel(points)[0])
    with pytest.raises(InputError, match="0-based voxel indices, which need the image grid"):
        read_points(tmp_path / "i.txt")


# ---------------------------------------------------------------- DIR-LAB frame
def test_dirlab_one_based(tmp_path):
    grid = rotated_grid()
    path = tmp_path / "Case1_300_T00_xyz.txt"
    path.write_bytes(b"1\t1\t1\r\n2\t1\t1\r\n1\t1\t3\r\n")  # CRLF, as published
    points = read_points(path, grid)
    np.testing.assert_allclose(points[0], grid.origin, atol=1e-12)
    np.testing.assert_allclose(points[1], grid.voxel_to_world(np.array([1.0, 0, 0])))
    np.testing.assert_allclose(np.linalg.norm(points[2] - points[0]), 2 * grid.spacing[2])


def test_dirlab_needs_grid(tmp_path):
    path = tmp_path / "c_xyz.txt"
    path.write_text("1 2 3\n")
    with pytest.raises(InputError, match="1-based voxel indices, which need the image grid"):
        read_points(path)
    with pytest.raises(InputError, match="need the image grid"):
        write_points(tmp_path / "out_xyz.txt", np.zeros((1, 3)))


# ---------------------------------------------------------------- Slicer frames
FCSV_RAS = """# Markups fiducial file version = 4.11
# CoordinateSystem = RAS
# columns = id,x,y,z,ow,ox,oy,oz,vis,sel,lock,label,desc,associatedNodeID,pixelspace,pixelStr
1,10.5,-20.25,30,0,0,0,1,1,1,0,"F-1, with comma",,,,
2,-1,2,-3,0,0,0,1,1,1,0,F-2,,,,
"""


def test_fcsv_ras_read_as_lps(tmp_path):
    (tmp_path / "p.fcsv").write_text(FCSV_RAS)
    np.testing.assert_allclose(read_points(tmp_path / "p.fcsv"),
                               [[-10.5, 20.25, 30], [1, -2, -3]])


@pytest.mark.parametrize("code, sign", [("0", -1.0), ("1", 1.0), ("LPS", 1.0)])
def test_fcsv_legacy_numeric_system(tmp_path, code, sign):
    text = f"# Markups fiducial file version = 4.6\n# CoordinateSystem = {code}\n" \
           "vtkMRMLMarkupsFiducialNode_0,1,2,3,0,0,0,1,1,1,0,F-1,,\n"
    (tmp_path / "p.fcsv").write_text(text)
    np.testing.assert_allclose(read_points(tmp_path / "p.fcsv"), [[sign, 2 * sign, 3]])


def test_mrk_json_ras_read_as_lps(tmp_path):
    data = {"markups": [{"type": "Fiducial", "coordinateSystem": "RAS",
                         "controlPoints": [{"position": [1.0, 2.0, 3.0]},
                                           {"position": [-4.0, 5.5, 6.0]}]}]}
    (tmp_path / "p.mrk.json").write_text(json.dumps(data))
    np.testing.assert_allclose(read_points(tmp_path / "p.mrk.json"),
                               [[-1, -2, 3], [4, -5.5, 6]])


def test_written_slicer_files_say_lps(tmp_path):
    points = world_points(rotated_grid(), n=2)
    write_points(tmp_path / "p.fcsv", points)
    write_points(tmp_path / "p.mrk.json", points)
    assert "# CoordinateSystem = LPS" in (tmp_path / "p.fcsv").read_text(encoding="utf-8")
    markup = json.loads((tmp_path / "p.mrk.json").read_text(encoding="utf-8"))["markups"][0]
    assert markup["coordinateSystem"] == "LPS"
    np.testing.assert_allclose(markup["controlPoints"][1]["position"], points[1])


# ---------------------------------------------------------------- malformed files
@pytest.mark.parametrize(
    "name, text, match",
    [
        ("a_xyz.txt", "1 2 3\n4 5\n", r"line 2: expected 3 coordinates, found 2"),
        ("a_xyz.txt", "1 2 3\r\n\r\n4 x 6\r\n", r"line 3: expected numbers"),
        ("a_xyz.txt", "", r"empty file"),
        ("e.txt", "point\n3\n1 2 3\n4 5 6\n", r"line 2: header says 3 points, found 2"),
        ("e.txt", "point\nthree\n1 2 3\n", r"line 2: expected the number of points"),
        ("e.txt", "1 2 3\n", r"line 1: expected the elastix header"),
        ("e.txt", "index\n1\n1 2 nan\n", r"line 3: expected finite numbers"),
        ("p.csv", "x,y,z\n1,2,3\n4,5\n", r"line 3: expected 3 comma-separated values"),
        ("p.csv", "a,b,c\n1,2,3\n", r"line 1: expected a header with columns x,y,z"),
        ("p.csv", "x,y,z\n", r"only the header"),
        ("p.csv", "x,y,z\n1,2,3\n1,two,3\n", r"line 3: expected numbers"),
        ("p.fcsv", "# CoordinateSystem = LPS\n1,2,3\n", r"line 2: expected at least 4"),
        ("p.fcsv", "# CoordinateSystem = IJK\n1,2,3,4\n", r"line 1: expected CoordinateSystem"),
        ("p.fcsv", "# CoordinateSystem = LPS\n", r"at least one point"),
        ("p.mrk.json", '{"markups": [\n{"controlPoints": [}\n]}', r"line 2: expected JSON"),
        ("p.mrk.json", '{"markups": [{"controlPoints": [{"position": [1, 2]}]}]}',
         r"controlPoints\[0\].position"),
    ],
)
def test_malformed(tmp_path, name, text, match):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        read_points(path, grid=rotated_grid(), what="fixed landmarks")
    assert str(err.value).startswith(f"fixed landmarks {path}")


def test_missing_and_unknown(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_points(tmp_path / "none.csv")
    (tmp_path / "p.xyz").write_text("1 2 3\n")
    with pytest.raises(InputError, match="expected a name ending"):
        read_points(tmp_path / "p.xyz")


def test_dimension_must_match_grid(tmp_path):
    (tmp_path / "p.csv").write_text("x,y\n1,2\n")
    with pytest.raises(InputError, match="expected 3D points for a 3D image, found 2"):
        read_points(tmp_path / "p.csv", grid=rotated_grid(3))


def test_check_pairs():
    check_pairs(np.zeros((4, 3)), np.ones((4, 3)), "landmarks")
    with pytest.raises(InputError, match="landmarks: .*4 fixed points .* 5 moving"):
        check_pairs(np.zeros((4, 3)), np.zeros((5, 3)), "landmarks")
    with pytest.raises(InputError, match="same shape"):
        check_pairs(np.zeros((4, 3)), np.zeros((4, 2)), "landmarks")


def test_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(InputError):
        write_points(tmp_path / "p.csv", np.array([[1.0, np.nan, 2.0]]))
    assert list(tmp_path.iterdir()) == []
