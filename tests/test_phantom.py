"""The breathing phantom: determinism, anatomy, and that its ground truth is exact.

Frames: world mm LPS; arrays (z, y, x); points (N, 3) in (x, y, z).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import SimpleITK as sitk

from cidir.data.phantom import (
    ANATOMY_CENTRE,
    PHANTOM_SIZES,
    field_to_sitk,
    make_phantom,
    write_phantom,
)
from cidir.geometry.grid import Grid

LUNG_LABELS = (1, 2)


@pytest.fixture(scope="module")
def phantom():
    return make_phantom("small", seed=0)


def _warp(phantom, image, interpolator):
    """Exhale image resampled on the inhale grid through the true field (SimpleITK oracle)."""
    tx = sitk.DisplacementFieldTransform(field_to_sitk(phantom.field, phantom.grid))
    ref = phantom.inhale.to_sitk()
    return sitk.GetArrayFromImage(sitk.Resample(image.to_sitk(), ref, tx, interpolator, 0.0,
                                                image.to_sitk().GetPixelID()))


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _body(phantom) -> np.ndarray:
    return phantom.inhale.array > -500


def test_deterministic(phantom):
    again = make_phantom("small", seed=0)
    for name in ("inhale", "exhale", "inhale_labels", "exhale_labels", "inhale_lung_mask"):
        np.testing.assert_array_equal(getattr(again, name).array, getattr(phantom, name).array)
    np.testing.assert_array_equal(again.field, phantom.field)
    np.testing.assert_array_equal(again.inhale_points, phantom.inhale_points)
    other = make_phantom("small", seed=1)
    assert not np.array_equal(other.inhale.array, phantom.inhale.array)
    assert not np.array_equal(other.exhale_labels.array, phantom.exhale_labels.array)
    assert not np.array_equal(other.field, phantom.field)
    assert len(other.inhale_points) >= 100


#: sha256 of the smooth phantom (small, seed 0) as generated before the sliding variant was
#: added (commit 495d96b): its images, labels, masks, field and points, floating arrays cast
#: to float32 (robust to last-bit differences of float64 transcendental functions)
SMOOTH_SMALL_SEED0_SHA256 = "f43266220238f028fd7ece7ae141fcfa5fce50c37e643b09182cd89668133b48"


def _fingerprint(p) -> str:
    h = hashlib.sha256()
    for a in (p.inhale.array, p.exhale.array, p.inhale_labels.array, p.exhale_labels.array,
              p.inhale_lung_mask.array, p.exhale_lung_mask.array, p.field, p.inhale_points,
              p.exhale_points):
        dtype = np.float32 if a.dtype.kind == "f" else a.dtype
        h.update(np.ascontiguousarray(a, dtype=dtype).tobytes())
    return h.hexdigest()


def test_smooth_variant_is_the_original_phantom(phantom):
    assert phantom.variant == "smooth" and not phantom.motion.sliding
    assert _fingerprint(phantom) == SMOOTH_SMALL_SEED0_SHA256
    with pytest.raises(ValueError, match="variant"):
        make_phantom("small", 0, variant="slidding")


def test_geometry_and_intensities(phantom):
    g = phantom.grid
    assert g.size == PHANTOM_SIZES["small"].size
    assert g.spacing[2] > g.spacing[0] == g.spacing[1]  # anisotropic, z coarser
    assert np.all(np.asarray(g.origin) != 0.0)
    for img in (phantom.inhale, phantom.exhale, phantom.inhale_labels, phantom.exhale_lung_mask):
        assert img.grid.same_as(g)
    assert phantom.inhale.array.dtype == np.float32
    assert phantom.inhale_labels.array.dtype == np.int32
    assert phantom.inhale_lung_mask.array.dtype == np.uint8
    assert phantom.field.shape == g.shape + (3,) and phantom.field.dtype == np.float64
    # the body fits: the outer voxel layer in x and y is air
    hu = phantom.inhale.array
    assert np.median(hu[:, :, 0]) < -950 and np.median(hu[:, 0, :]) < -950
    for name in ("inhale", "exhale"):
        hu = getattr(phantom, name).array
        labels = getattr(phantom, f"{name}_labels").array
        lungs = np.isin(labels, LUNG_LABELS)
        assert abs(np.median(hu[:, :, :3]) + 1000) < 30  # air
        assert -900 < np.median(hu[lungs]) < -800  # lung parenchyma
        assert np.percentile(hu, 99.9) > 300  # bone
        assert 20 < np.median(hu[labels == 3]) < 60  # heart
        assert set(np.unique(labels)) == {0, 1, 2, 3, 4, 5}
        assert getattr(phantom, f"{name}_lung_mask").array.sum() > 0.04 * hu.size
    # the tumour is a 1.5-2 cm sphere (volume of a 16-20 mm ball, within partial volume)
    vol = (phantom.exhale_labels.array == 4).sum() * np.prod(phantom.grid.spacing)
    assert 4.0 / 3.0 * np.pi * 7.0**3 < vol < 4.0 / 3.0 * np.pi * 11.0**3
    # inhale lungs are larger than exhale lungs (breathing)
    assert phantom.inhale_lung_mask.array.sum() > 1.05 * phantom.exhale_lung_mask.array.sum()


def test_field_warps_exhale_onto_inhale(phantom):
    body = _body(phantom)
    warped = _warp(phantom, phantom.exhale, sitk.sitkLinear)
    err = np.abs(warped - phantom.inhale.array)[body].mean()
    err_identity = np.abs(phantom.exhale.array - phantom.inhale.array)[body].mean()
    # measured (seed 0): 29 HU with the field (noise of both images, 20 HU each, and
    # linear interpolation of 1-3 mm vessels on 2.6 x 2.6 x 5 mm voxels), 104 HU without
    assert err < 35.0
    assert err < 0.4 * err_identity
    warped_labels = _warp(phantom, phantom.exhale_labels, sitk.sitkNearestNeighbor)
    fixed = phantom.inhale_labels.array
    for label in LUNG_LABELS:
        dice = _dice(warped_labels == label, fixed == label)
        dice_identity = _dice(phantom.exhale_labels.array == label, fixed == label)
        assert dice > 0.95, (label, dice)  # measured 0.97 (nearest neighbour, 5 mm slices)
        assert dice > dice_identity
    assert _dice(warped_labels == 3, fixed == 3) > 0.9


def test_landmarks_agree_with_field(phantom):
    x, y = phantom.inhale_points, phantom.exhale_points
    assert x.shape == y.shape and x.shape[0] >= 100 and x.shape[1] == 3
    np.testing.assert_allclose(y, x + phantom.displacement(x), atol=1e-6)
    tx = sitk.DisplacementFieldTransform(field_to_sitk(phantom.field, phantom.grid))
    mapped = np.array([tx.TransformPoint(tuple(p)) for p in x])
    voxel = np.asarray(phantom.grid.spacing)
    err = np.abs(mapped - y)
    assert np.all(err < 0.25 * voxel), err.max(axis=0)  # linear interpolation of a smooth u
    tre = np.linalg.norm(y - x, axis=1)
    assert 5.0 < tre.mean() < 15.0 and tre.max() <= 25.0
    for points, mask in ((x, phantom.inhale_lung_mask), (y, phantom.exhale_lung_mask)):
        idx = np.round(phantom.grid.world_to_voxel(points)).astype(int)
        assert np.all(mask.array[idx[:, 2], idx[:, 1], idx[:, 0]] == 1)


def test_motion_is_plausible_and_invertible(phantom):
    g = phantom.grid
    u = phantom.field
    lungs = phantom.inhale_lung_mask.array.astype(bool)
    z = g.world_points()[:, 2].reshape(g.shape)
    z_lung = z[lungs]
    assert 15.0 <= np.abs(u[..., 2][lungs]).max() <= 20.0
    base = lungs & (z < np.percentile(z_lung, 10))
    apex = lungs & (z > np.percentile(z_lung, 97))
    assert np.median(u[..., 2][base]) > 12.0  # the base rises on exhale (+z, superior)
    assert np.abs(u[apex]).max() < 3.0
    assert 2.0 < np.abs(u[..., 1][lungs]).max() < 7.0  # antero-posterior
    assert 1.5 < np.abs(u[..., 0][lungs]).max() < 5.0  # lateral
    # the spine and the air outside the body hardly move
    local = (g.world_points() - np.asarray(ANATOMY_CENTRE)).reshape(g.shape + (3,))
    spine = (phantom.exhale.array > 250) & (np.abs(local[..., 0]) < 15) & (local[..., 1] > 30)
    assert np.abs(u[spine]).max() < 6.0
    assert np.linalg.norm(u[:, :, :2], axis=-1).max() < 3.0
    # det(I + ∇u) > 0 everywhere, derivatives in mm ((z, y, x) array axes)
    jac = np.empty(g.shape + (3, 3))
    for i in range(3):
        dz, dy, dx = np.gradient(u[..., i], *reversed(g.spacing))
        jac[..., i, :] = np.stack([dx, dy, dz], axis=-1)
    det = np.linalg.det(jac + np.eye(3))
    assert det.min() > 0.5
    assert 0.8 < det[lungs].mean() < 1.0  # lungs contract on exhale


def test_write_phantom(phantom, tmp_path):
    paths = write_phantom(phantom, tmp_path / "demo")
    expected = {"inhale", "exhale", "inhale_labels", "exhale_labels", "inhale_lungmask",
                "exhale_lungmask", "field_true", "inhale_points", "exhale_points"}
    assert set(paths) == expected
    assert all(p.is_file() for p in paths.values())
    assert not list((tmp_path / "demo").glob(".*"))  # no temporary files left
    img = sitk.ReadImage(str(paths["inhale"]))
    assert Grid.from_sitk(img).same_as(phantom.grid)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(img), phantom.inhale.array)
    labels = sitk.GetArrayFromImage(sitk.ReadImage(str(paths["exhale_labels"])))
    np.testing.assert_array_equal(labels, phantom.exhale_labels.array)
    field = sitk.ReadImage(str(paths["field_true"]), sitk.sitkVectorFloat64)
    assert Grid.from_sitk(field).same_as(phantom.grid)
    assert field.GetNumberOfComponentsPerPixel() == 3
    np.testing.assert_array_equal(sitk.GetArrayFromImage(field), phantom.field)
    tx = sitk.DisplacementFieldTransform(field)
    p = phantom.inhale_points[0]
    np.testing.assert_allclose(tx.TransformPoint(tuple(p)), phantom.exhale_points[0], atol=1.0)
    for key in ("inhale_points", "exhale_points"):
        lines = paths[key].read_text(encoding="utf-8").splitlines()
        assert lines[0] == "x,y,z"
        pts = np.array([[float(v) for v in line.split(",")] for line in lines[1:]])
        np.testing.assert_array_equal(pts, getattr(phantom, key))
