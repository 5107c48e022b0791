"""Image I/O: geometry round trips, DICOM series, vector fields, errors, atomic writes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.errors import InputError
from cidir.geometry.grid import Grid
from cidir.geometry.image import Image
from cidir.io import images as io_images
from cidir.io.images import (
    check_common_labels,
    check_same_dimension,
    check_same_grid,
    read_image,
    read_label_map,
    read_mask,
    read_vector_image,
    write_image,
    write_vector_image,
)


def rotation(ndim: int, angle: float = 0.3) -> tuple[float, ...]:
    c, s = math.cos(angle), math.sin(angle)
    if ndim == 2:
        return (c, -s, s, c)
    rz = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, c, -s], [0, s, c]])
    return tuple((rz @ rx).ravel())


def make_grid(ndim: int) -> Grid:
    if ndim == 3:
        return Grid((7, 6, 5), (0.8, 1.3, 2.5), (-12.5, 40.0, 3.25), rotation(3))
    return Grid((9, 7), (0.7, 1.9), (-3.5, 11.0), rotation(2))


def make_image(ndim: int, seed: int = 0) -> Image:
    grid = make_grid(ndim)
    array = np.random.default_rng(seed).normal(size=grid.shape).astype(np.float32)
    return Image(array, grid, "synthetic")


def assert_same_geometry(a: Grid, b: Grid, atol: float = 1e-9) -> None:
    assert a.size == b.size
    np.testing.assert_allclose(a.spacing, b.spacing, atol=atol)
    np.testing.assert_allclose(a.origin, b.origin, atol=atol)
    np.testing.assert_allclose(a.direction, b.direction, atol=atol)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if ".tmp" in p.name]


# ---------------------------------------------------------------- round trips
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("ext", [".nii.gz", ".nii", ".mha", ".mhd", ".nrrd"])
def test_round_trip_keeps_geometry(tmp_path, ndim, ext):
    image = make_image(ndim)
    path = tmp_path / f"img{ext}"
    write_image(image, path)
    back = read_image(path)
    assert back.array.dtype == np.float32
    np.testing.assert_array_equal(back.array, image.array)
    # NIfTI stores geometry in float32
    assert_same_geometry(back.grid, image.grid, atol=1e-5 if "nii" in ext else 1e-9)
    assert no_temp_files(tmp_path)


def test_mhd_writes_header_and_data(tmp_path):
    write_image(make_image(3), tmp_path / "a.mhd")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[0] == "a.mhd" and len(names) == 2  # header + (z)raw, nothing else
    assert read_image(tmp_path / "a.mhd").grid.same_as(make_image(3).grid)


def test_singleton_z_stays_3d(tmp_path):
    grid = Grid((5, 4, 1), (1.0, 2.0, 3.0), (1.0, 2.0, 3.0), tuple(np.eye(3).ravel()))
    image = Image(np.arange(20, dtype=np.float32).reshape(1, 4, 5), grid)
    write_image(image, tmp_path / "s.nii.gz")
    back = read_image(tmp_path / "s.nii.gz")
    assert back.ndim == 3 and back.array.shape == (1, 4, 5)


def test_write_dtype_and_bool(tmp_path):
    image = make_image(3)
    write_image(image.with_array(image.array > 0), tmp_path / "m.nii.gz")
    mask = read_mask(tmp_path / "m.nii.gz", reference=image.grid)
    np.testing.assert_array_equal(mask.array, image.array > 0)
    write_image(image.with_array(np.abs(image.array) * 10), tmp_path / "i.nrrd", dtype=np.int16)
    assert sitk.ReadImage(str(tmp_path / "i.nrrd")).GetPixelID() == sitk.sitkInt16


def write_dicom_series(image: sitk.Image, folder: Path, series: int = 1) -> None:
    """SimpleITK's DicomSeriesFromArray recipe: one file per slice with geometry tags."""
    folder.mkdir(exist_ok=True)
    writer = sitk.ImageFileWriter()
    writer.KeepOriginalImageUIDOn()
    direction = image.GetDirection()
    series_uid = f"1.2.826.0.1.3680043.2.1125.1.1234567890123456789{series}"
    common = [
        ("0008|0031", "120000"), ("0008|0021", "20240101"),
        ("0008|0008", "DERIVED\\SECONDARY"), ("0020|000e", series_uid),
        ("0020|0037", "\\".join(map(str, (direction[0], direction[3], direction[6],
                                           direction[1], direction[4], direction[7])))),
        ("0008|103e", "cidir test"), ("0008|0060", "CT"),
    ]
    for i in range(image.GetDepth()):
        slice_i = image[:, :, i]
        for tag, value in common:
            slice_i.SetMetaData(tag, value)
        slice_i.SetMetaData("0008|0012", "20240101")
        slice_i.SetMetaData("0008|0013", "120000")
        slice_i.SetMetaData("0020|0032", "\\".join(
            map(str, image.TransformIndexToPhysicalPoint((0, 0, i)))))
        slice_i.SetMetaData("0020|0013", str(i))
        writer.SetFileName(str(folder / f"s{series}_{i:03d}.dcm"))
        writer.Execute(slice_i)


def test_dicom_series_folder(tmp_path):
    grid = Grid((8, 6, 5), (0.75, 0.75, 2.5), (-20.0, 15.5, 7.0), rotation(3, 0.2))
    array = np.random.default_rng(1).integers(-1000, 1000, grid.shape).astype(np.int16)
    image = sitk.GetImageFromArray(array)
    grid.apply_to_sitk(image)
    write_dicom_series(image, tmp_path / "dicom")
    back = read_image(tmp_path / "dicom")
    np.testing.assert_array_equal(back.array, array.astype(np.float32))
    assert_same_geometry(back.grid, grid, atol=1e-3)


def test_dicom_folder_takes_largest_series(tmp_path):
    grid = Grid((8, 6, 5), (0.75, 0.75, 2.5), (-20.0, 15.5, 7.0), tuple(np.eye(3).ravel()))
    big = sitk.GetImageFromArray(np.arange(240, dtype=np.int16).reshape(grid.shape))
    grid.apply_to_sitk(big)
    write_dicom_series(big, tmp_path / "dicom", series=1)
    write_dicom_series(big[:, :, :3], tmp_path / "dicom", series=2)
    assert read_image(tmp_path / "dicom").grid.size == (8, 6, 5)
    write_dicom_series(big[:, :, :5], tmp_path / "dicom", series=3)
    with pytest.raises(InputError, match="several have 5 files"):
        read_image(tmp_path / "dicom")


def test_empty_folder_is_input_error(tmp_path):
    with pytest.raises(InputError, match="no DICOM series"):
        read_image(tmp_path)


# ---------------------------------------------------------------- vector images
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vector_field_moves_point_via_sitk(tmp_path, dtype):
    grid = make_grid(3)
    field = np.zeros(grid.shape + (3,), dtype=dtype)
    u = np.array([1.5, -2.25, 0.75])
    field[...] = u  # constant field: every point moves by u (mm, LPS)
    path = tmp_path / "field.nii.gz"
    write_vector_image(field, grid, path)
    back, back_grid = read_vector_image(path)
    assert back.shape == field.shape and back.dtype == dtype
    np.testing.assert_allclose(back, field)
    assert_same_geometry(back_grid, grid, atol=1e-5)
    transform = sitk.DisplacementFieldTransform(sitk.ReadImage(str(path), sitk.sitkVectorFloat64))
    point = grid.voxel_to_world(np.array([3.0, 2.0, 2.0]))
    np.testing.assert_allclose(transform.TransformPoint(tuple(point)), point + u, atol=1e-5)


def test_vector_field_varying_value(tmp_path):
    grid = make_grid(2)
    field = np.random.default_rng(3).normal(size=grid.shape + (2,))
    write_vector_image(field, grid, tmp_path / "f.mha")
    transform = sitk.DisplacementFieldTransform(
        sitk.ReadImage(str(tmp_path / "f.mha"), sitk.sitkVectorFloat64))
    voxel = np.array([4, 3])
    point = grid.voxel_to_world(voxel.astype(float))
    expected = point + field[voxel[1], voxel[0]]  # array is (y, x, D)
    np.testing.assert_allclose(transform.TransformPoint(tuple(point)), expected, atol=1e-9)


def test_vector_image_rejected_as_scalar(tmp_path):
    grid = make_grid(3)
    write_vector_image(np.ones(grid.shape + (3,)), grid, tmp_path / "v.nii.gz")
    with pytest.raises(InputError, match="3 components"):
        read_image(tmp_path / "v.nii.gz")


# ---------------------------------------------------------------- errors
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"fixed image .*nope\.nii\.gz.*no such file"):
        read_image(tmp_path / "nope.nii.gz", what="fixed image")


def test_corrupt_file(tmp_path):
    path = tmp_path / "bad.nii.gz"
    path.write_bytes(b"this is not an image" * 50)
    with pytest.raises(InputError) as err:
        read_image(path, what="moving image")
    message = str(err.value)
    assert "moving image" in message and "bad.nii.gz" in message and "corrupt" in message
    assert "\n" not in message and ".cxx" not in message


@pytest.mark.parametrize("name", ["nan.nii.gz", "nan.nii", "nan.mha", "nan.nrrd"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_voxels(tmp_path, name, dtype):
    # ITK 5 reads NaN in NIfTI as 0: the stored bytes must be checked
    image = make_image(3)
    array = image.array.astype(dtype)
    array.flat[[0, 5, 9]] = [np.nan, np.inf, -np.inf]
    write_image(image.with_array(array), tmp_path / name)
    with pytest.raises(InputError, match=f"{name}: .*3 NaN or infinite"):
        read_image(tmp_path / name)
    with pytest.raises(InputError, match="3 NaN or infinite"):
        read_mask(tmp_path / name)


@pytest.mark.parametrize("name", ["t.nii.gz", "t.nii", "t.mha", "t.nrrd"])
def test_truncated_file(tmp_path, name):
    # ITK 5 zero-fills truncated NIfTI data silently: the size must be checked
    write_image(make_image(3), tmp_path / name)
    data = (tmp_path / name).read_bytes()
    (tmp_path / name).write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match=name):
        read_image(tmp_path / name)


def test_constant_image(tmp_path):
    image = make_image(2)
    write_image(image.with_array(np.full(image.grid.shape, 7.5, np.float32)),
                tmp_path / "c.nii.gz")
    with pytest.raises(InputError, match="constant image .*7.5"):
        read_image(tmp_path / "c.nii.gz")
    assert read_image(tmp_path / "c.nii.gz", allow_constant=True).array.max() == 7.5


def test_label_map_float_integral_and_grid(tmp_path):
    image = make_image(3)
    labels = np.random.default_rng(2).integers(0, 5, image.grid.shape).astype(np.float32)
    write_image(image.with_array(labels), tmp_path / "l.nii.gz")
    out = read_label_map(tmp_path / "l.nii.gz", reference=image.grid)
    assert out.array.dtype == np.int32
    np.testing.assert_array_equal(out.array, labels.astype(np.int32))


def test_label_map_non_integral(tmp_path):
    image = make_image(3)
    write_image(image.with_array(np.full(image.grid.shape, 1.5, np.float32)),
                tmp_path / "l.nii.gz")
    with pytest.raises(InputError, match="fractional"):
        read_label_map(tmp_path / "l.nii.gz")


def test_label_map_negative(tmp_path):
    image = make_image(3)
    write_image(image.with_array(np.full(image.grid.shape, -2, np.int16)), tmp_path / "l.nrrd")
    with pytest.raises(InputError, match="negative"):
        read_label_map(tmp_path / "l.nrrd")


def test_grid_mismatch(tmp_path):
    """A map entirely outside its image's grid is refused; 2D against 3D too."""
    image = make_image(3)
    write_image(image.with_array(np.ones(image.grid.shape, np.uint8)), tmp_path / "m.nii.gz")
    shifted = Grid(image.grid.size, image.grid.spacing, (0.0, 0.0, 0.0), image.grid.direction)
    with pytest.raises(InputError, match=r"lung mask .*m.nii.gz.*entirely outside") as err:
        read_mask(tmp_path / "m.nii.gz", what="lung mask", reference=shifted)
    assert shifted.describe() in str(err.value)
    with pytest.raises(InputError, match="labels"):
        read_label_map(tmp_path / "m.nii.gz", reference=shifted)
    with pytest.raises(InputError, match="expected a 2D map"):
        read_mask(tmp_path / "m.nii.gz", reference=make_grid(2))
    with pytest.raises(InputError, match="expected the reference grid"):
        check_same_grid(read_mask(tmp_path / "m.nii.gz"), shifted, "mask")
    # within tolerance: fine
    near = Grid(image.grid.size, image.grid.spacing,
                tuple(np.add(image.grid.origin, 5e-4)), image.grid.direction)
    check_same_grid(read_mask(tmp_path / "m.nii.gz"), near, "mask")


def test_map_on_another_grid_is_resampled(tmp_path, caplog):
    """A label map / mask on another grid overlapping its image's is resampled onto it
    (nearest, world space, 0 outside) with a warning naming the file and both grids."""
    grid = Grid((8, 6, 4), (2.0, 2.0, 3.0), (10.0, -5.0, 2.0), rotation(3))
    labels = np.arange(grid.num_voxels, dtype=np.int32).reshape(grid.shape) % 7
    write_image(Image(labels, grid), tmp_path / "l.nii.gz")
    # the image's grid: half the spacing, its voxels on the map's and halfway between them,
    # shifted by two map voxels along x (so part of it lies outside the map)
    fine = Grid((15, 11, 7), (1.0, 1.0, 1.5), tuple(grid.voxel_to_world(np.array([2.0, 0, 0]))),
                grid.direction)
    with caplog.at_level("WARNING", logger="cidir"):
        out = read_label_map(tmp_path / "l.nii.gz", "fixed labels", reference=fine)
    assert out.grid == fine and out.array.dtype == np.int32
    np.testing.assert_array_equal(out.array[::2, ::2, :-4:2], labels[:, :, 2:])
    assert (out.array[:, :, -3:] == 0).all()  # beyond the map's last voxel (+ half a voxel)
    message = caplog.records[-1].getMessage()
    assert "l.nii.gz" in message and "resampled" in message
    assert grid.describe() in message and fine.describe() in message
    write_image(Image((labels == 3).astype(np.uint8), grid), tmp_path / "m.nii.gz")
    mask = read_mask(tmp_path / "m.nii.gz", reference=fine)
    assert mask.array.dtype == bool
    np.testing.assert_array_equal(mask.array[::2, ::2, :-4:2], labels[:, :, 2:] == 3)
    # same grid within 1e-3 mm: unchanged, no warning
    caplog.clear()
    with caplog.at_level("WARNING", logger="cidir"):
        same = read_label_map(tmp_path / "l.nii.gz", reference=Grid(
            grid.size, grid.spacing, tuple(np.add(grid.origin, 5e-4)), grid.direction))
    assert not caplog.records and same.grid.same_as(grid, atol=1e-6)


def test_empty_mask(tmp_path):
    image = make_image(2)
    write_image(image.with_array(np.zeros(image.grid.shape, np.uint8)), tmp_path / "m.nii.gz")
    with pytest.raises(InputError, match="empty"):
        read_mask(tmp_path / "m.nii.gz")


def test_common_labels():
    grid = make_grid(2)
    a = Image(np.zeros(grid.shape, np.int32), grid, "a.nii")
    b = Image(np.zeros(grid.shape, np.int32), grid, "b.nii")
    a.array[0, :3] = [1, 2, 7]
    b.array[0, :3] = [2, 7, 9]
    assert check_common_labels(a, b, "Dice labels") == [2, 7]
    b.array[...] = 0
    b.array[0, 0] = 3
    with pytest.raises(InputError, match="Dice labels: .*none in common"):
        check_common_labels(a, b, "Dice labels")


def test_dimension_mismatch():
    with pytest.raises(InputError, match="expected a 3D image .* found 2D"):
        check_same_dimension(make_image(3), make_image(2), "fixed image", "moving image")
    check_same_dimension(make_image(3), make_image(3, seed=1), "fixed", "moving")


# ---------------------------------------------------------------- atomic writes
def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(io_images.sitk, "WriteImage", boom)
    for name in ("x.nii.gz", "x.mhd"):
        with pytest.raises(InputError, match=f"{name}: cannot write it .disk full"):
            write_image(make_image(3), tmp_path / name)
    assert list(tmp_path.iterdir()) == []


def test_overwrite_is_atomic(tmp_path):
    path = tmp_path / "x.nii.gz"
    write_image(make_image(3, seed=1), path)
    write_image(make_image(3, seed=2), path)
    np.testing.assert_array_equal(read_image(path).array, make_image(3, seed=2).array)
    assert [p.name for p in tmp_path.iterdir()] == ["x.nii.gz"]


@pytest.mark.shared_data
def test_mindboggle_float_labels(shared_data):
    folder = shared_data / "mindboggle-2d"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    image = read_image(folder / "images" / "OASIS-TRT-20-1_slice118.nii.gz")
    labels = read_label_map(
        folder / "labels" / "OASIS-TRT-20-1_DKT31_CMA_labels_slice118.nii.gz",
        reference=image.grid)
    assert image.ndim == 2 and labels.array.dtype == np.int32
    assert 30 < len(np.unique(labels.array)) < 80


def test_atomic_outputs_have_ordinary_permissions(tmp_path):
    """Atomic writes do not leave mkstemp's owner-only mode on the output."""
    import os
    import stat

    from cidir.io.atomic import write_text

    path = tmp_path / "out.txt"
    write_text(path, "x")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
