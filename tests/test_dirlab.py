"""DIR-LAB 4DCT loader: published identity TRE, file discovery, image layout."""

from __future__ import annotations

import numpy as np
import pytest

from cidir.data.dirlab import (
    CASES,
    IDENTITY_TRE_MM,
    case_grid,
    find_case_file,
    load_case,
    read_dirlab_image,
    read_dirlab_landmarks,
    write_dirlab_image,
)
from cidir.errors import InputError


@pytest.mark.shared_data
def test_identity_tre_matches_published(shared_data):
    folder = shared_data / "dirlab4dct-landmarks"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    for case, published in IDENTITY_TRE_MM.items():
        data = load_case(None, case, with_images=False, landmark_root=folder)
        assert data.fixed is None and data.fixed_points.shape == (300, 3)
        tre = np.linalg.norm(data.fixed_points - data.moving_points, axis=1).mean()
        assert abs(tre - published) < 0.01, (case, tre, published)
        voxels = data.grid.world_to_voxel(data.fixed_points)
        assert np.all(voxels >= 0) and np.all(voxels <= np.asarray(CASES[case][0]) - 1)


def test_case_grid():
    grid = case_grid(2)
    assert grid.size == (256, 256, 112) and grid.spacing == (1.16, 1.16, 2.5)
    assert grid.origin == (0.0, 0.0, 0.0) and grid.direction == tuple(np.eye(3).ravel())
    with pytest.raises(InputError, match="expected 1 to 10"):
        case_grid(11)


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    "case, name",
    [(1, "case1_T00_s.img"), (2, "case2_T00-ssm.img"), (6, "case6_T00.img"),
     (1, "Case1_T00.img"), (10, "Case10_T00_s.img")],
)
def test_find_image_name_variants(tmp_path, case, name):
    target = touch(tmp_path / f"Case{case}Pack" / "Images" / name)
    touch(tmp_path / "other" / "case1_T50_s.img")
    touch(tmp_path / "other" / ("case10_T00.img" if case == 1 else "case1_T00_s.img.bak"))
    assert find_case_file(tmp_path, case, "T00") == target


@pytest.mark.parametrize(
    "name", ["Case1_300_T00_xyz.txt", "case1_300_T00_xyz.txt", "case1_dirLab300_T00_xyz.txt"]
)
def test_find_landmarks(tmp_path, name):
    target = touch(tmp_path / "Case1Pack" / "extremePhases" / name)
    touch(tmp_path / "Case10Pack" / "extremePhases" / "Case10_300_T00_xyz.txt")
    touch(tmp_path / "Case1Pack" / "extremePhases" / "Case1_300_T50_xyz.txt")
    assert find_case_file(tmp_path, 1, "T00", kind="landmarks") == target


def test_find_missing_or_ambiguous(tmp_path):
    touch(tmp_path / "case10_T00.img")
    with pytest.raises(InputError, match=r"case1_T00\*\.img .*found none"):
        find_case_file(tmp_path, 1, "T00")
    with pytest.raises(InputError, match=r"Case3_300_T50_xyz\.txt"):
        find_case_file(tmp_path, 3, "T50", kind="landmarks")
    touch(tmp_path / "a" / "case10_T00_s.img")
    with pytest.raises(InputError, match="found 2"):
        find_case_file(tmp_path, 10, "T00")
    with pytest.raises(InputError, match="no such folder"):
        find_case_file(tmp_path / "absent", 1, "T00")


def test_image_round_trip_case1(tmp_path):
    grid = case_grid(1)
    rng = np.random.default_rng(0)
    hu = rng.integers(-1024, 2000, grid.shape).astype(np.float32)
    path = tmp_path / "Case1Pack" / "Images" / "case1_T00_s.img"
    write_dirlab_image(hu, path)
    assert path.stat().st_size == 256 * 256 * 94 * 2
    # layout: little-endian int16, x fastest, stored = HU + 1024
    raw = np.fromfile(path, "<i2")
    assert raw[1] == hu[0, 0, 1] + 1024 and raw[256] == hu[0, 1, 0] + 1024
    image = read_dirlab_image(find_case_file(tmp_path, 1, "T00"), 1)
    assert image.array.dtype == np.float32 and image.array.shape == (94, 256, 256)
    np.testing.assert_array_equal(image.array, hu)
    assert image.grid.same_as(grid) and image.grid.spacing == (0.97, 0.97, 2.5)
    assert [p.name for p in path.parent.iterdir()] == ["case1_T00_s.img"]


def test_wrong_file_size(tmp_path):
    path = tmp_path / "case2_T00-ssm.img"
    write_dirlab_image(np.zeros(case_grid(1).shape), path)  # case 1 size, read as case 2
    with pytest.raises(InputError, match=r"expected 14680064 bytes .* found 12320768"):
        read_dirlab_image(path, 2)


def test_load_case_with_images_and_landmarks(tmp_path):
    grid = case_grid(1)
    hu = np.zeros(grid.shape, np.float32)
    hu[40, 100, 120] = 500.0
    write_dirlab_image(hu, tmp_path / "img" / "case1_T00_s.img")
    write_dirlab_image(hu - 10, tmp_path / "img" / "case1_T50_s.img")
    lm = tmp_path / "lm"
    lm.mkdir()
    (lm / "Case1_300_T00_xyz.txt").write_bytes(b"121\t101\t41\r\n1\t1\t1\r\n")
    (lm / "Case1_300_T50_xyz.txt").write_bytes(b"121\t101\t42\r\n2\t1\t1\r\n")
    data = load_case(tmp_path / "img", 1, landmark_root=lm)
    assert data.fixed.array[40, 100, 120] == 500.0 and data.moving.array.max() == 490.0
    # landmark 1-based (121, 101, 41) is the voxel array[40, 100, 120]: same frame, no flip
    voxel = data.grid.world_to_voxel(data.fixed_points[0])
    np.testing.assert_allclose(voxel, [120, 100, 40], atol=1e-9)
    assert data.fixed.array[tuple(np.round(voxel[::-1]).astype(int))] == 500.0
    np.testing.assert_allclose(data.moving_points - data.fixed_points, [[0, 0, 2.5], [0.97, 0, 0]])
    np.testing.assert_allclose(
        read_dirlab_landmarks(lm / "Case1_300_T00_xyz.txt", 1), data.fixed_points)


def test_write_out_of_range(tmp_path):
    with pytest.raises(InputError, match="expected HU in"):
        write_dirlab_image(np.full((2, 2, 2), 40000.0), tmp_path / "x.img")
    assert list(tmp_path.iterdir()) == []
