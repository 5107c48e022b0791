"""The phantom's ``sliding`` variant: lungs sliding along a still chest wall, denser lungs at
exhale, and ground truth that stays exact away from the discontinuity.

Frames: world mm LPS; arrays (z, y, x); points (N, 3) in (x, y, z); the motion's functions
take local points (world minus ``ANATOMY_CENTRE``).
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from cidir.data import phantom as phantom_module
from cidir.data.phantom import (
    ANATOMY_CENTRE,
    VARIANTS,
    PhantomVariant,
    field_to_sitk,
    make_phantom,
)
from cidir.data.phantom_anatomy import lungs_sd, segments_sd
from cidir.data.phantom_motion import CAGE

LUNG_LABELS = (1, 2)


@pytest.fixture(scope="module")
def sliding():
    return make_phantom("small", seed=0, variant="sliding")


@pytest.fixture(scope="module")
def smooth():
    return make_phantom("small", seed=0)


@pytest.fixture(scope="module")
def no_density():
    """The sliding variant without the density change (same seeds: same noise)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(VARIANTS, "sliding-only", PhantomVariant(sliding=True, exhale_density=False))
        return make_phantom("small", seed=0, variant="sliding-only")


def _local_grid_points(p) -> np.ndarray:
    g = p.grid
    return (g.world_points() - np.asarray(ANATOMY_CENTRE)).reshape(g.shape + (3,))


def _interface_points(motion, z: float, angles_deg) -> np.ndarray:
    """Local inhale points on the sliding interface where the lungs touch the rib cage:
    exhale in-plane positions on the cage ellipse, pulled back through the in-plane motion."""
    theta = np.deg2rad(np.asarray(angles_deg, float))
    target = np.stack([CAGE[0] * np.cos(theta), CAGE[2] + CAGE[1] * np.sin(theta)], axis=1)
    x = np.column_stack([target, np.full(len(theta), z)])
    for _ in range(100):  # x_xy + u_xy(x) = target (u_xy is continuous and small)
        x[:, :2] = target - motion.displacement(x)[:, :2]
    return x


def _normals(motion, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    """Unit normals (pointing into the cavity) of the inhale interface at points x."""
    grad = np.stack([(motion.interface_distance(x + h * e) - motion.interface_distance(x - h * e))
                     / (2 * h) for e in np.eye(3)], axis=1)
    return grad / np.linalg.norm(grad, axis=1, keepdims=True)


def test_variants_share_anatomy_noise_and_exhale(sliding, smooth):
    assert sliding.variant == "sliding" and sliding.motion.sliding
    np.testing.assert_array_equal(sliding.exhale.array, smooth.exhale.array)
    np.testing.assert_array_equal(sliding.exhale_labels.array, smooth.exhale_labels.array)
    assert not np.array_equal(sliding.inhale.array, smooth.inhale.array)
    # the antero-posterior / lateral chest-wall excursion is that of the smooth phantom
    np.testing.assert_array_equal(sliding.field[..., :2], smooth.field[..., :2])


@pytest.mark.parametrize("z, least_mm", [(0.0, 6.0), (-40.0, 10.0)])
def test_lungs_slide_along_the_chest_wall(sliding, z, least_mm):
    """Across the interface u_z steps by 95 % of the lungs' motion (≥ 6 mm at mid-lung
    height, z = 0, ≥ 10 mm in the lower lung) while the normal component is continuous."""
    motion = sliding.motion
    x = _interface_points(motion, z, [0, 30, 60, -30, -60, 180, 150, 120, 210, 240])
    assert np.abs(motion.interface_distance(x)).max() < 1e-6
    n = _normals(motion, x)
    inside = motion.displacement(x + 1e-3 * n)
    outside = motion.displacement(x - 1e-3 * n)
    jump = inside - outside
    assert np.all(jump[:, 2] >= least_mm), jump[:, 2]
    assert np.all(jump[:, 2] >= 0.9 * inside[:, 2])
    assert np.abs(outside[:, 2]).max() < 0.06 * np.abs(inside[:, 2]).max()
    np.testing.assert_allclose(jump[:, :2], 0.0, atol=1e-4)  # u_x, u_y continuous
    # measured ≤ 0.18 mm: the inhale interface is tilted ≤ 1.2° from the vertical slide
    assert np.abs(np.sum(jump * n, axis=1)).max() < 0.5
    # the inner side moves as the cavity branch (a smooth function of the position)
    np.testing.assert_allclose(inside, motion.cavity_displacement(x + 1e-3 * n))


def test_ribs_and_spine_nearly_still(sliding, smooth):
    local = _local_grid_points(sliding)
    wall = sliding.motion.interface_distance(local.reshape(-1, 3)).reshape(local.shape[:-1]) < 0
    u = sliding.field
    ribs = (sliding.inhale.array > 400) & (np.abs(local[..., 0]) > 30) & wall
    assert ribs.sum() > 1000
    assert np.abs(u[..., 2][ribs]).max() < 1.5  # measured 0.92 mm (lungs: up to 18 mm)
    assert np.abs(smooth.field[..., 2][ribs]).max() > 10.0  # the smooth phantom drags them
    # in-plane only the chest-wall excursion (measured ≤ 4.7 mm at the lower anterior ribs)
    assert np.linalg.norm(u[..., :2][ribs], axis=-1).max() < 6.0
    spine = (sliding.exhale.array > 250) & (np.abs(local[..., 0]) < 15) & (local[..., 1] > 30)
    assert np.abs(u[spine]).max() < 2.0  # measured 1.1 mm
    lungs = sliding.inhale_lung_mask.array.astype(bool)
    assert 15.0 <= u[..., 2][lungs].max() <= 20.0


def _parenchyma_means(p) -> tuple[float, float, int, int]:
    """Mean HU of the eroded lung parenchyma (labels 1, 2) at inhale and exhale, and the
    lung label volumes (voxels)."""
    li = np.isin(p.inhale_labels.array, LUNG_LABELS)
    le = np.isin(p.exhale_labels.array, LUNG_LABELS)
    hi = float(p.inhale.array[ndimage.binary_erosion(li)].mean())
    he = float(p.exhale.array[ndimage.binary_erosion(le)].mean())
    return hi, he, int(li.sum()), int(le.sum())


def test_exhale_lungs_are_denser_by_mass_conservation(sliding, smooth, no_density):
    """Same parenchyma mass in both phases: ρ_exhale / ρ_inhale = V_inhale / V_exhale."""
    hi, he, vi, ve = _parenchyma_means(sliding)
    expected = vi / ve - 1.0  # measured 0.126 (lung volume 12.6 % larger at inhale)
    assert 0.08 < expected < 0.2
    assert (1000 + he) / (1000 + hi) - 1.0 == pytest.approx(expected, rel=0.2)  # 0.141
    assert 12.0 < he - hi < 30.0  # measured -864.1 vs -844.9 HU: 19.2 HU
    hi, he, _, _ = _parenchyma_means(smooth)
    assert abs(he - hi) < 3.0  # the smooth phantom: the same density in both phases
    # the inhale parenchyma is the no-density one scaled by det ∇φ (same noise, same motion)
    local = _local_grid_points(sliding).reshape(-1, 3)
    det = sliding.motion.cavity_volume_ratio(local).reshape(sliding.grid.shape)
    par = ndimage.binary_erosion(np.isin(sliding.inhale_labels.array, LUNG_LABELS))
    shift = (sliding.inhale.array - no_density.inhale.array)[par]
    predicted = ((1000.0 + no_density.inhale.array) * (det - 1.0))[par]
    assert shift.mean() == pytest.approx(predicted.mean(), rel=0.05)
    assert np.abs(shift - predicted).mean() < 4.0  # vessels' partial volume; z supersampling


def test_density_change_spares_vessels_and_tumour(sliding):
    """Rendered with det ∇φ = 0.8, parenchyma HU becomes 1000 (0.8 ρ - 1); vessel centres,
    the tumour and the air outside the lungs keep theirs."""
    a = sliding.anatomy
    vessels = 0.5 * (a.seg_a + a.seg_b)
    points = np.concatenate([vessels, a.tumour_centre[None], [[0.0, -5.0, 80.0]]])  # trachea
    hu, labels, _ = a.render(points, 1.0)
    again, _, _ = a.render(points, 1.0, lambda i: np.full(len(i), 0.8))
    assert set(np.unique(labels)) == {4, 5}
    np.testing.assert_array_equal(again, hu)
    rng = np.random.default_rng(0)
    lung = rng.uniform([30, -40, -20], [100, 40, 60], (4000, 3))
    hu, labels, _ = a.render(lung, 1.0)
    again, _, _ = a.render(lung, 1.0, lambda i: np.full(len(i), 0.8))
    clear = segments_sd(lung, a.seg_a, a.seg_b, a.r_a, a.r_b, 5.0) > 1.0  # of vessels
    pure = np.isin(labels, LUNG_LABELS) & clear & (lungs_sd(lung) < -1.0)
    assert pure.sum() > 1000
    np.testing.assert_allclose(again[pure], 1000.0 * (0.8 * (1.0 + hu[pure] / 1000.0) - 1.0))


def test_landmarks_stay_exact_away_from_the_wall(sliding):
    x, y = sliding.inhale_points, sliding.exhale_points
    assert x.shape[0] >= 100
    np.testing.assert_allclose(y, x + sliding.displacement(x), atol=0.02)
    local = x - np.asarray(ANATOMY_CENTRE)
    assert sliding.motion.interface_distance(local).min() >= phantom_module.LANDMARK_WALL_MM
    tx = sitk.DisplacementFieldTransform(field_to_sitk(sliding.field, sliding.grid))
    mapped = np.array([tx.TransformPoint(tuple(p)) for p in x])
    assert np.all(np.abs(mapped - y) < 0.25 * np.asarray(sliding.grid.spacing))


def _warp_error(p, inhale: np.ndarray, region: np.ndarray) -> float:
    tx = sitk.DisplacementFieldTransform(field_to_sitk(p.field, p.grid))
    ref = p.inhale.to_sitk()
    warped = sitk.GetArrayFromImage(sitk.Resample(p.exhale.to_sitk(), ref, tx, sitk.sitkLinear,
                                                  0.0, sitk.sitkFloat32))
    return float(np.abs(warped - inhale)[region].mean())


def test_field_warps_exhale_onto_inhale_away_from_the_wall(sliding, smooth, no_density):
    local = _local_grid_points(sliding).reshape(-1, 3)
    far = np.abs(sliding.motion.interface_distance(local)).reshape(sliding.grid.shape) > 3.0
    lungs = sliding.inhale_lung_mask.array.astype(bool) & far
    err_smooth = _warp_error(smooth, smooth.inhale.array, lungs)  # measured 32.1 HU
    err_sliding = _warp_error(no_density, no_density.inhale.array, lungs)  # 32.1 HU
    assert err_sliding < 1.1 * err_smooth and err_smooth < 35.0
    # with the density change, compensate it on the parenchyma: ρ_in = ρ_ex(φ) · det ∇φ
    det = sliding.motion.cavity_volume_ratio(local).reshape(sliding.grid.shape)
    tx = sitk.DisplacementFieldTransform(field_to_sitk(sliding.field, sliding.grid))
    warped = sitk.GetArrayFromImage(sitk.Resample(sliding.exhale.to_sitk(),
                                                  sliding.inhale.to_sitk(), tx, sitk.sitkLinear,
                                                  0.0, sitk.sitkFloat32))
    par = np.isin(sliding.inhale_labels.array, LUNG_LABELS)
    compensated = np.where(par, (1000.0 + warped) * det - 1000.0, warped)
    err_density = float(np.abs(compensated - sliding.inhale.array)[lungs].mean())  # 30.4 HU
    assert err_density < 1.1 * err_smooth
    assert _warp_error(sliding, sliding.inhale.array, lungs) > err_density + 5.0  # 39.8 HU
