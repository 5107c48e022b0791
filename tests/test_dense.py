"""Dense outputs against SimpleITK: fields, warps, point maps and Jacobian maps."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from cidir.config import ModelConfig
from cidir.fields import (
    ConditionedTransform,
    displacement_field,
    jacobian_determinant_map,
    resample_with_field,
    warp_image,
    warp_labels,
)
from cidir.geometry import Grid, Image
from cidir.io.images import write_vector_image
from cidir.models import DeformationModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


ALPHA = 0.4
SCALING = np.diag([1.1, 0.9, 1.2, 1.0])
SCALING[:3, 3] = [1.5, -2.0, 0.5]


def _rotation(ax: float, az: float) -> np.ndarray:
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ rx


FIXED = Grid((20, 16, 10), (1.0, 1.3, 2.2), (-12.0, 4.0, 30.0), tuple(_rotation(0.3, 0.5).ravel()))


def _moving_grid() -> Grid:
    """Another anisotropic, rotated grid, centred on the fixed one and covering most of it."""
    size, spacing, direction = (32, 32, 16), (1.2, 1.1, 2.5), _rotation(-0.2, 0.4)
    half = direction @ (np.asarray(spacing) * (np.asarray(size) - 1) / 2.0)
    return Grid(size, spacing, tuple(FIXED.center - half), tuple(direction.ravel()))


MOVING = _moving_grid()


def _transform(init_matrix: np.ndarray | None = None) -> ConditionedTransform:
    """A random (untrained) cidir model with a perturbed output layer and harmonizer head:
    displacements of a few mm, smooth on the voxel scale."""
    torch.manual_seed(0)
    config = ModelConfig(kind="cidir", width=32, hidden_layers=2, harmonizer_widths=(8,),
                         omega_first=2.0)
    model = DeformationModel(config, 3)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.mlp.output.weight.copy_(0.02 * torch.randn(3, 32, generator=g))
        head = model.harmonizer.head.weight
        head.copy_(0.2 * torch.randn(head.shape, generator=g))
    return ConditionedTransform(model, FIXED, init_matrix)


@pytest.fixture(scope="module")
def transform() -> ConditionedTransform:
    return _transform()


@pytest.fixture(scope="module")
def moving_image() -> Image:
    """A smooth-plus-noise image on the moving grid."""
    w = MOVING.world_points()
    rng = np.random.default_rng(0)
    values = np.sin(w @ np.array([0.2, -0.15, 0.1])) + 0.1 * rng.normal(size=len(w))
    return Image(values.reshape(MOVING.shape).astype(np.float32), MOVING, "moving")


def _sitk_field_transform(field: np.ndarray, tmp_path) -> sitk.DisplacementFieldTransform:
    path = tmp_path / "field.nii.gz"
    write_vector_image(field, FIXED, path)
    return sitk.DisplacementFieldTransform(sitk.ReadImage(str(path), sitk.sitkVectorFloat64))


def _reference() -> sitk.Image:
    ref = sitk.Image(list(FIXED.size), sitk.sitkFloat32)
    FIXED.apply_to_sitk(ref)
    return ref


def test_field_is_map_minus_identity(transform):
    """displacement_field = φ(x) − x at the voxel centres (world mm), field is non-trivial."""
    field = displacement_field(transform, ALPHA)
    assert field.shape == FIXED.shape + (3,)
    x = FIXED.world_points()
    expected = transform.map_points(x, ALPHA) - x
    np.testing.assert_allclose(field.reshape(-1, 3), expected, atol=1e-4)
    assert 0.5 < np.abs(field).max() < 10.0
    other = displacement_field(transform, 0.9)
    assert np.abs(other - field).max() > 0.05  # α matters


def test_chunk_size_does_not_change_results(transform, moving_image):
    """Chunked evaluation (odd chunk sizes) gives the unchunked results."""
    np.testing.assert_allclose(displacement_field(transform, ALPHA, chunk_size=701),
                               displacement_field(transform, ALPHA), atol=1e-6)
    np.testing.assert_allclose(jacobian_determinant_map(transform, ALPHA, chunk_size=1001),
                               jacobian_determinant_map(transform, ALPHA), atol=1e-6)
    np.testing.assert_allclose(warp_image(transform, moving_image, ALPHA, chunk_size=999).array,
                               warp_image(transform, moving_image, ALPHA).array, atol=1e-6)


@pytest.mark.parametrize("init", [None, SCALING])
def test_warp_image_matches_sitk(tmp_path, moving_image, init):
    """warp_image equals sitk.Resample(moving, fixed, DisplacementFieldTransform(field on disk),
    linear, 0) to 1e-4 where both are inside; they disagree only at a few border voxels
    where one of them reads the outside value 0."""
    transform = _transform(init)
    field = displacement_field(transform, ALPHA)
    sitk_transform = _sitk_field_transform(field, tmp_path)
    expected = sitk.GetArrayFromImage(sitk.Resample(moving_image.to_sitk(), _reference(),
                                                    sitk_transform, sitk.sitkLinear, 0.0))
    found = warp_image(transform, moving_image, ALPHA)
    assert found.grid == FIXED
    both = (expected != 0) & (found.array != 0)
    assert both.mean() > 0.5
    np.testing.assert_allclose(found.array[both], expected[both], atol=1e-4)
    assert (both != ((expected != 0) | (found.array != 0))).mean() < 0.01


@pytest.mark.parametrize("init", [None, SCALING])
def test_warp_labels_matches_sitk(tmp_path, init):
    """warp_labels equals sitkNearestNeighbor resampling but for < 0.1% of voxels (ties)."""
    transform = _transform(init)
    rng = np.random.default_rng(5)
    labels = Image(rng.integers(0, 5, size=MOVING.shape).astype(np.int32), MOVING, "labels")
    sitk_transform = _sitk_field_transform(displacement_field(transform, ALPHA), tmp_path)
    expected = sitk.GetArrayFromImage(sitk.Resample(labels.to_sitk(), _reference(),
                                                    sitk_transform, sitk.sitkNearestNeighbor, 0))
    found = warp_labels(transform, labels, ALPHA).array
    assert found.dtype == np.int32
    assert (found != expected).mean() < 1e-3
    assert (found > 0).mean() > 0.3


@pytest.mark.parametrize("init", [None, SCALING])
def test_transform_point_matches_map_points(tmp_path, init):
    """DisplacementFieldTransform.TransformPoint on fixed voxel centres equals map_points."""
    transform = _transform(init)
    sitk_transform = _sitk_field_transform(displacement_field(transform, ALPHA), tmp_path)
    rng = np.random.default_rng(6)
    flat = rng.choice(FIXED.num_voxels, size=40, replace=False)
    points = FIXED.world_points(flat)
    mapped = transform.map_points(points, ALPHA)
    expected = np.array([sitk_transform.TransformPoint([float(v) for v in p]) for p in points])
    np.testing.assert_allclose(mapped, expected, atol=1e-3)
    assert np.abs(mapped - points).max() > 0.5


def _finite_difference_det(field: np.ndarray, grid: Grid) -> np.ndarray:
    """det(I + ∂u/∂x) with ∂u/∂x in mm from central differences along the voxel axes:
    ∂u/∂x = (∂u/∂v)·(direction·diag(spacing))⁻¹."""
    d = grid.ndim
    du_dv = np.empty(field.shape + (d,))
    for j in range(d):  # voxel axis j (x, y, z) is array axis d - 1 - j
        du_dv[..., j] = np.gradient(field, axis=d - 1 - j)
    inverse = np.linalg.inv(grid.direction_matrix @ np.diag(grid.spacing))
    grad = du_dv @ inverse
    return np.linalg.det(np.eye(d) + grad)


@pytest.mark.parametrize("init", [None, SCALING])
def test_jacobian_map_matches_finite_differences(init):
    """det ∇φ equals det of finite differences of the field in mm (spacing and direction
    used) in the interior, and includes the initial affine's determinant."""
    transform = _transform(init)
    det = jacobian_determinant_map(transform, ALPHA)
    assert det.shape == FIXED.shape
    fd = _finite_difference_det(displacement_field(transform, ALPHA).astype(np.float64), FIXED)
    interior = (slice(1, -1),) * 3
    error = np.abs(det[interior] - fd[interior])
    assert error.max() < 5e-3 and np.median(error) < 1e-3
    assert det.std() > 0.02  # non-trivial
    # ignoring the direction (spacing only) would be wrong: the check can fail
    wrong_grid = Grid(FIXED.size, FIXED.spacing, FIXED.origin, tuple(np.eye(3).ravel()))
    wrong = _finite_difference_det(displacement_field(transform, ALPHA).astype(np.float64),
                                   wrong_grid)
    assert np.abs(det[interior] - wrong[interior]).max() > 0.05


def test_jacobian_map_includes_affine_determinant():
    """With a scaling init_matrix, det map = det(A)·(det map without it)."""
    plain = jacobian_determinant_map(_transform(None), ALPHA)
    scaled = jacobian_determinant_map(_transform(SCALING), ALPHA)
    np.testing.assert_allclose(scaled, np.linalg.det(SCALING[:3, :3]) * plain, rtol=1e-5)


def test_resample_with_field_matches_warps(transform, moving_image):
    """Warps from one precomputed field equal the direct warps (images and labels)."""
    field = displacement_field(transform, 0.4)
    grid = transform.grid
    direct = warp_image(transform, moving_image, 0.4).array
    shared = resample_with_field(moving_image, field, grid).array
    np.testing.assert_allclose(shared, direct, rtol=1e-5, atol=1e-5)
    labels = moving_image.with_array((moving_image.array > np.median(moving_image.array))
                                     .astype(np.int32) * 3)
    direct_labels = warp_labels(transform, labels, 0.4).array
    shared_labels = resample_with_field(labels, field, grid, labels=True).array
    assert np.mean(direct_labels != shared_labels) < 1e-3


def test_jacobian_map_inside_a_mask_only(transform):
    """With a mask, the voxels inside get the full map's values (chunking across the mask
    included) and the others NaN; a mask of the wrong shape is refused."""
    full = jacobian_determinant_map(transform, ALPHA)
    mask = np.zeros(FIXED.shape, bool)
    mask[3:15, 2:9, 1:8] = True
    masked = jacobian_determinant_map(transform, ALPHA, mask=mask, chunk_size=97)
    np.testing.assert_allclose(masked[mask], full[mask], rtol=1e-5, atol=1e-6)
    assert np.isnan(masked[~mask]).all()
    with pytest.raises(ValueError, match="mask"):
        jacobian_determinant_map(transform, ALPHA, mask=mask[:-1])


def test_dice_before_is_taken_in_world_space_across_grids(transform):
    """Labels given on the moving grid: Dice before registration resamples them where they
    lie in world space, so a label map that covers the same world region as the fixed one
    overlaps it well before registration, although the two grids differ."""
    from cidir.evaluation.at_alpha import evaluate_transform

    def ball(grid: Grid) -> Image:
        inside = np.linalg.norm(grid.world_points() - FIXED.center, axis=1) < 8.0
        return Image(inside.reshape(grid.shape).astype(np.int32), grid, "ball")

    result = evaluate_transform(transform, ALPHA, fixed_labels=ball(FIXED),
                                moving_labels=ball(MOVING))
    assert result.dice_before is not None and result.dice_before > 0.9
    shifted = Image(np.roll(ball(MOVING).array, 6, axis=0), MOVING, "shifted ball")
    worse = evaluate_transform(transform, ALPHA, fixed_labels=ball(FIXED),
                               moving_labels=shifted)
    assert worse.dice_before is not None and worse.dice_before < result.dice_before - 0.1


def test_evaluation_with_a_precomputed_field_matches(transform):
    """Labels warped through the dense field computed once give the same Dice as the
    network evaluated again."""
    from cidir.evaluation.at_alpha import evaluate_transform

    w = FIXED.world_points() - FIXED.center
    fixed = Image((np.linalg.norm(w, axis=1) < 7.0).reshape(FIXED.shape).astype(np.int32),
                  FIXED, "fixed ball")
    m = MOVING.world_points() - FIXED.center
    moving = Image((np.linalg.norm(m * [1.1, 0.9, 1.0], axis=1) < 7.0).reshape(MOVING.shape)
                   .astype(np.int32), MOVING, "moving ellipsoid")
    direct = evaluate_transform(transform, ALPHA, fixed_labels=fixed, moving_labels=moving)
    shared = evaluate_transform(transform, ALPHA, fixed_labels=fixed, moving_labels=moving,
                                field=displacement_field(transform, ALPHA))
    assert direct.dice is not None and 0.3 < direct.dice < 1.0
    assert shared.dice == pytest.approx(direct.dice, abs=1e-3)
    assert shared.folding_percent == direct.folding_percent
    with pytest.raises(ValueError, match="field"):
        evaluate_transform(transform, ALPHA, fixed_labels=fixed, moving_labels=moving,
                           field=np.zeros((3, 3, 3, 3), np.float32))
