"""ImageSampler / LabelSampler against SimpleITK resampling (ITK conventions)."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from cidir.fields import ImageSampler, LabelSampler
from cidir.geometry import Grid, Image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rotation(d: int) -> np.ndarray:
    if d == 2:
        a = 0.5
        return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    ax, az = 0.35, -0.6
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ rx


def _moving_grid(d: int) -> Grid:
    """Anisotropic, rotated, non-zero origin."""
    if d == 2:
        return Grid((11, 7), (0.9, 2.2), (5.0, -3.0), tuple(_rotation(2).ravel()))
    return Grid((9, 8, 6), (0.9, 1.2, 2.5), (5.0, -3.0, 20.0), tuple(_rotation(3).ravel()))


def _query_grid(moving: Grid, seed: int) -> Grid:
    """An identity-direction grid around the moving image (beyond it on every side), with a
    random offset; its voxel centres are the query points."""
    rng = np.random.default_rng(seed)
    corners = moving.corners_world()
    low, high = corners.min(axis=0) - 3.0, corners.max(axis=0) + 3.0
    spacing = rng.uniform(0.7, 1.4, size=moving.ndim)
    origin = low + rng.uniform(0, 1, size=moving.ndim) * spacing
    size = np.ceil((high - origin) / spacing).astype(int)
    return Grid(tuple(size), tuple(spacing), tuple(origin), tuple(np.eye(moving.ndim).ravel()))


def _sitk_resample(image: Image, query: Grid, interpolator) -> np.ndarray:
    reference = sitk.Image([int(s) for s in query.size], sitk.sitkUInt8)
    query.apply_to_sitk(reference)
    out = sitk.Resample(image.to_sitk(), reference, sitk.Transform(), interpolator, 0.0)
    return sitk.GetArrayFromImage(out).ravel()


@pytest.mark.parametrize("d", [2, 3])
def test_linear_matches_sitk(d):
    """Linear values at world points equal sitk.Resample (linear, default 0) inside, near the
    border (half a voxel beyond the border centres) and outside."""
    grid = _moving_grid(d)
    rng = np.random.default_rng(d)
    image = Image(rng.uniform(0.5, 2.0, size=grid.shape).astype(np.float32), grid)
    sampler = ImageSampler(image)
    for seed in range(2):
        query = _query_grid(grid, seed)
        expected = _sitk_resample(image, query, sitk.sitkLinear)
        points = torch.as_tensor(query.world_points(), dtype=torch.float32)
        found = sampler(points).numpy()
        inside = expected != 0
        assert 0.1 < inside.mean() < 0.9  # both inside and outside points are tested
        np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("d", [2, 3])
def test_labels_match_sitk_nearest(d):
    """Nearest-label values equal sitk.Resample with sitkNearestNeighbor exactly."""
    grid = _moving_grid(d)
    rng = np.random.default_rng(10 + d)
    labels = Image(rng.integers(1, 6, size=grid.shape).astype(np.int32), grid)
    sampler = LabelSampler(labels)
    for seed in range(2):
        query = _query_grid(grid, 100 + seed)
        expected = _sitk_resample(labels, query, sitk.sitkNearestNeighbor)
        found = sampler(torch.as_tensor(query.world_points(), dtype=torch.float32)).numpy()
        assert 0.1 < (expected != 0).mean() < 0.9
        np.testing.assert_array_equal(found, expected)


def test_border_convention():
    """Inside means voxel index in [-0.5, size - 0.5): the border voxel extends half a voxel
    (constant value there, as ITK), and a point just beyond reads 0."""
    grid = Grid((4, 3), (2.0, 1.0), (10.0, 20.0), (1.0, 0.0, 0.0, 1.0))
    array = np.arange(12, dtype=np.float32).reshape(3, 4) + 1.0
    sampler = ImageSampler(Image(array, grid))
    labels = LabelSampler(Image(array.astype(np.int32), grid))
    voxels = np.array([[-0.45, 0.0], [3.45, 2.0], [-0.55, 0.0], [3.55, 2.0], [2.5, 1.0]])
    world = torch.as_tensor(grid.voxel_to_world(voxels), dtype=torch.float32)
    np.testing.assert_allclose(sampler(world).numpy(), [1.0, 12.0, 0.0, 0.0, 7.5], rtol=1e-6)
    np.testing.assert_array_equal(labels(world).numpy(), [1, 12, 0, 0, 8])  # .5 rounds up


@pytest.mark.parametrize("d", [2, 3])
def test_image_sampler_gradient(d):
    """The sampler is differentiable in the points: autograd gradient equals central finite
    differences, and approximates the gradient of the smooth function the image samples."""
    grid = _moving_grid(d)
    w = torch.as_tensor(grid.world_points(), dtype=torch.float64)
    k = torch.tensor([0.15, -0.1, 0.08][:d], dtype=torch.float64)
    values = torch.sin(w @ k).numpy().reshape(grid.shape).astype(np.float32)
    sampler = ImageSampler(Image(values, grid))
    rng = np.random.default_rng(d)
    voxels = rng.uniform(1.0, np.asarray(grid.size) - 2.0, size=(10, d))
    points = torch.as_tensor(grid.voxel_to_world(voxels), dtype=torch.float32)
    points.requires_grad_(True)
    grad = torch.autograd.grad(sampler(points).sum(), points)[0]
    h = 2e-3
    fd = torch.zeros_like(grad)
    with torch.no_grad():
        for axis in range(d):
            step = torch.zeros(d)
            step[axis] = h
            fd[:, axis] = (sampler(points + step) - sampler(points - step)) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=2e-2, atol=2e-3)
    analytic = (torch.cos(points.detach().double() @ k)[:, None] * k).float()
    assert float((grad - analytic).abs().max()) < 0.03  # linear interpolation of a sine
    assert float(grad.abs().max()) > 0.05
