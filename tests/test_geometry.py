"""Grid: voxel ↔ world ↔ network frames, agreement with SimpleITK, validation."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from cidir.geometry import Frame, Grid, Image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _rotation_3d(angles: tuple[float, float, float]) -> np.ndarray:
    ax, ay, az = angles
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _rotation_2d(angle: float) -> np.ndarray:
    return np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])


def _grids() -> dict[str, Grid]:
    """Anisotropic grids with non-zero origins: rotated and flipped, 2D and 3D."""
    rot3 = _rotation_3d((0.3, -0.2, 0.5))
    flip3 = np.diag([1.0, -1.0, 1.0]) @ _rotation_3d((0.0, 0.1, -0.4))  # det = -1
    rot2 = _rotation_2d(0.7)
    flip2 = _rotation_2d(-0.3) @ np.diag([-1.0, 1.0])
    return {
        "3d-rotated": Grid((7, 5, 4), (0.8, 1.3, 2.5), (-10.0, 4.0, 30.5), tuple(rot3.ravel())),
        "3d-flipped": Grid((6, 9, 3), (1.1, 0.7, 3.0), (12.0, -7.5, -2.0), tuple(flip3.ravel())),
        "2d-rotated": Grid((8, 5), (0.6, 2.0), (3.0, -1.5), tuple(rot2.ravel())),
        "2d-flipped": Grid((4, 10), (1.7, 0.9), (-20.0, 11.0), tuple(flip2.ravel())),
    }


GRIDS = _grids()
GRID_IDS = list(GRIDS)


def _sitk_image(grid: Grid) -> sitk.Image:
    image = sitk.Image(list(grid.size), sitk.sitkFloat32)
    grid.apply_to_sitk(image)
    return image


def _random_voxels(grid: Grid, n: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-0.5, np.asarray(grid.size) - 0.5, size=(n, grid.ndim))


@pytest.mark.parametrize("name", GRID_IDS)
def test_flip_grids_really_flip(name):
    """The test geometries are what they claim: flipped ones have det(direction) = -1."""
    det = np.linalg.det(GRIDS[name].direction_matrix)
    assert det == pytest.approx(-1.0 if "flipped" in name else 1.0)


@pytest.mark.parametrize("name", GRID_IDS)
def test_round_trips_numpy(name):
    """voxel → world → voxel, world → network → world and all convert() pairs are identities."""
    grid = GRIDS[name]
    voxel = _random_voxels(grid)
    world = grid.voxel_to_world(voxel)
    np.testing.assert_allclose(grid.world_to_voxel(world), voxel, atol=1e-12)
    net = grid.world_to_network(world)
    np.testing.assert_allclose(grid.network_to_world(net), world, atol=1e-12)
    for source, target in itertools.permutations(list(Frame), 2):
        points = grid.convert(voxel, Frame.VOXEL, source)
        there = grid.convert(points, source, target)
        back = grid.convert(there, target, source)
        np.testing.assert_allclose(back, points, atol=1e-11)
        np.testing.assert_allclose(grid.convert(there, target, Frame.VOXEL), voxel, atol=1e-11)


@pytest.mark.parametrize("name", GRID_IDS)
def test_torch_matches_numpy(name):
    """float64 torch tensors give the numpy results, keep their dtype, and round-trip."""
    grid = GRIDS[name]
    voxel = _random_voxels(grid, seed=1)
    tv = torch.as_tensor(voxel, dtype=torch.float64)
    tw = grid.voxel_to_world(tv)
    assert isinstance(tw, torch.Tensor) and tw.dtype == torch.float64
    np.testing.assert_allclose(tw.numpy(), grid.voxel_to_world(voxel), atol=1e-12)
    tn = grid.world_to_network(tw)
    assert tn.dtype == torch.float64
    np.testing.assert_allclose(tn.numpy(), grid.world_to_network(grid.voxel_to_world(voxel)),
                               atol=1e-12)
    np.testing.assert_allclose(grid.world_to_voxel(grid.network_to_world(tn)).numpy(), voxel,
                               atol=1e-11)


@pytest.mark.parametrize("name", GRID_IDS)
def test_agrees_with_sitk(name):
    """voxel ↔ world equals SimpleITK's continuous-index transforms on the same geometry."""
    grid = GRIDS[name]
    image = _sitk_image(grid)
    voxel = _random_voxels(grid, seed=2)
    world = grid.voxel_to_world(voxel)
    for v, w in zip(voxel, world, strict=True):
        expected_w = image.TransformContinuousIndexToPhysicalPoint([float(x) for x in v])
        np.testing.assert_allclose(w, expected_w, atol=1e-9)
        expected_v = image.TransformPhysicalPointToContinuousIndex([float(x) for x in w])
        np.testing.assert_allclose(grid.world_to_voxel(w), expected_v, atol=1e-9)


@pytest.mark.parametrize("name", GRID_IDS)
def test_from_sitk_and_apply_to_sitk(name):
    """from_sitk reads back exactly what apply_to_sitk wrote; a size mismatch is refused."""
    grid = GRIDS[name]
    image = _sitk_image(grid)
    assert Grid.from_sitk(image) == grid
    assert np.allclose(image.GetDirection(), grid.direction)
    wrong = sitk.Image([s + 1 for s in grid.size], sitk.sitkFloat32)
    with pytest.raises(ValueError):
        grid.apply_to_sitk(wrong)
    array = np.arange(grid.num_voxels, dtype=np.float32).reshape(grid.shape)
    img = Image(array, grid)
    back = Image.from_sitk(img.to_sitk())
    assert back.grid == grid
    np.testing.assert_array_equal(back.array, array)
    assert Grid.from_dict(grid.to_dict()) == grid


@pytest.mark.parametrize("name", GRID_IDS)
def test_network_frame_is_isotropic_and_fits(name):
    """Network distances × scale = mm distances on every axis; the grid fits in [-1, 1]
    and touches ±1 along its widest world extent."""
    grid = GRIDS[name]
    rng = np.random.default_rng(3)
    world = rng.normal(size=(30, grid.ndim)) * 20.0
    net = grid.world_to_network(world)
    d_world = world[:, None, :] - world[None, :, :]
    d_net = net[:, None, :] - net[None, :, :]
    np.testing.assert_allclose(d_net * grid.scale, d_world, atol=1e-10)  # per component
    corners = grid.world_to_network(grid.corners_world())
    assert np.all(np.abs(corners) <= 1.0 + 1e-12)
    assert np.max(np.abs(corners)) == pytest.approx(1.0)
    # the whole grid, every voxel centre, fits too
    assert np.all(np.abs(grid.world_to_network(grid.world_points())) <= 1.0 + 1e-12)
    np.testing.assert_allclose(grid.world_to_network(grid.center), 0.0, atol=1e-12)


def test_scale_is_not_per_axis():
    """A grid much longer along x than z still has one scale: z spans less than [-1, 1]."""
    grid = Grid((100, 10, 5), (1.0, 1.0, 2.0), (0.0, 0.0, 0.0), tuple(np.eye(3).ravel()))
    net = grid.world_to_network(grid.corners_world())
    assert grid.scale == pytest.approx(49.5)
    assert net[:, 0].max() == pytest.approx(1.0)
    assert net[:, 2].max() == pytest.approx(4.0 / 49.5)


@pytest.mark.parametrize("name", GRID_IDS)
def test_voxel_indices_order(name):
    """voxel_indices(flat) is (x, y, z) of the flat position in a (z, y, x) C-order ravel;
    torch and numpy paths agree; world_points is voxel_to_world of them."""
    grid = GRIDS[name]
    array = np.arange(grid.num_voxels).reshape(grid.shape)
    idx = grid.voxel_indices()
    assert idx.shape == (grid.num_voxels, grid.ndim)
    values = array[tuple(idx[:, k] for k in reversed(range(grid.ndim)))]
    np.testing.assert_array_equal(values, np.arange(grid.num_voxels))
    assert tuple(idx[1]) == (1,) + (0,) * (grid.ndim - 1)  # x is fastest
    flat = np.array([0, 5, grid.num_voxels - 1, 7])
    t_idx = grid.voxel_indices(torch.as_tensor(flat))
    np.testing.assert_array_equal(t_idx.numpy(), grid.voxel_indices(flat))
    np.testing.assert_allclose(grid.world_points(flat),
                               grid.voxel_to_world(idx[flat].astype(float)), atol=1e-12)
    image = _sitk_image(grid)
    for f in flat:
        v = [int(x) for x in idx[f]]
        np.testing.assert_allclose(grid.world_points(np.array([f]))[0],
                                   image.TransformIndexToPhysicalPoint(v), atol=1e-9)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"direction": (1.0, 0.0, 0.0, 1.0, 0.1, 0.0, 0.0, 0.0, 1.0)},  # not orthonormal
        {"direction": tuple((2.0 * np.eye(3)).ravel())},  # scaled
        {"spacing": (1.0, 0.0, 1.0)},
        {"spacing": (1.0, -1.0, 1.0)},
        {"spacing": (1.0, float("nan"), 1.0)},
        {"spacing": (1.0, 1.0)},
        {"origin": (0.0, 0.0)},
        {"direction": tuple(np.eye(2).ravel())},
        {"size": (4, 0, 4)},
        {"size": (4,), "spacing": (1.0,), "origin": (0.0,), "direction": (1.0,)},
    ],
)
def test_invalid_grids_raise(kwargs):
    """Non-orthonormal directions, non-positive spacings and wrong lengths raise ValueError."""
    base = {"size": (4, 4, 4), "spacing": (1.0, 1.0, 1.0), "origin": (0.0, 0.0, 0.0),
            "direction": tuple(np.eye(3).ravel())}
    base.update(kwargs)
    with pytest.raises(ValueError):
        Grid(**base)


@pytest.mark.parametrize("name", GRID_IDS)
def test_cube_frame_is_grid_sample_coordinates(name):
    """CUBE: voxel 0 ↔ -1 and voxel size - 1 ↔ +1 per axis; grid_sample (align_corners=True)
    at the cube coordinates of a voxel centre reads that voxel; voxel ↔ cube round-trips."""
    grid = GRIDS[name]
    corners = np.array(list(itertools.product(*[(0, s - 1) for s in grid.size])), float)
    cube = grid.voxel_to_cube(corners)
    np.testing.assert_allclose(np.abs(cube), 1.0, atol=1e-12)
    voxel = _random_voxels(grid, seed=4)
    np.testing.assert_allclose(grid.cube_to_voxel(grid.voxel_to_cube(voxel)), voxel, atol=1e-12)
    values = np.arange(grid.num_voxels, dtype=np.float64).reshape(grid.shape)
    idx = grid.voxel_indices(np.array([0, 3, grid.num_voxels - 1]))
    c = torch.as_tensor(grid.voxel_to_cube(idx.astype(float)), dtype=torch.float64)
    shape = (1,) * (grid.ndim - 1) + (1, -1, grid.ndim)
    read = torch.nn.functional.grid_sample(torch.as_tensor(values)[None, None], c.view(*shape),
                                           align_corners=True).reshape(-1)
    np.testing.assert_allclose(read.numpy(), values.reshape(-1)[[0, 3, grid.num_voxels - 1]])


def test_cube_frame_size_one_axis():
    """A size-1 axis uses 1 as the cube denominator (voxel 0 ↔ -1), as the sampler does."""
    grid = Grid((4, 1), (1.0, 2.0), (0.0, 0.0), (1.0, 0.0, 0.0, 1.0))
    np.testing.assert_allclose(grid.voxel_to_cube(np.array([[3.0, 0.0]])), [[1.0, -1.0]])
    maps = grid.maps("cpu", torch.float32)
    np.testing.assert_allclose(maps.cube_denominator.numpy(), [3.0, 1.0])


@pytest.mark.parametrize("name", GRID_IDS)
def test_maps_match_numpy_and_are_cached(name):
    """Grid.maps: the same conversions as the numpy methods, one object per device/dtype."""
    grid = GRIDS[name]
    maps = grid.maps("cpu", torch.float64)
    assert grid.maps(torch.device("cpu"), torch.float64) is maps
    assert grid.maps("cpu", torch.float32) is not maps
    voxel = _random_voxels(grid, seed=5)
    world = grid.voxel_to_world(voxel)
    tw = maps.voxel_to_world(torch.as_tensor(voxel))
    np.testing.assert_allclose(tw.numpy(), world, atol=1e-12)
    np.testing.assert_allclose(maps.world_to_voxel(tw).numpy(), voxel, atol=1e-10)
    np.testing.assert_allclose(maps.world_to_network(tw).numpy(), grid.world_to_network(world),
                               atol=1e-12)
    np.testing.assert_allclose(maps.network_to_world(maps.world_to_network(tw)).numpy(), world,
                               atol=1e-10)
    np.testing.assert_allclose(maps.voxel_to_cube(torch.as_tensor(voxel)).numpy(),
                               grid.voxel_to_cube(voxel), atol=1e-12)
    inside = maps.inside(torch.as_tensor(np.array([[-0.5] * grid.ndim, [-0.51] * grid.ndim])))
    assert inside.tolist() == [True, False]


@pytest.mark.parametrize("name", GRID_IDS)
def test_to_sitk_scalar_and_vector(name):
    """to_sitk: the array on the grid, scalar or vector; a wrong shape is refused."""
    grid = GRIDS[name]
    scalar = np.arange(grid.num_voxels, dtype=np.int16).reshape(grid.shape)
    image = grid.to_sitk(scalar)
    assert Grid.from_sitk(image) == grid
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), scalar)
    field = np.random.default_rng(6).normal(size=grid.shape + (grid.ndim,))
    vector = grid.to_sitk(field, vector=True)
    assert vector.GetNumberOfComponentsPerPixel() == grid.ndim and Grid.from_sitk(vector) == grid
    np.testing.assert_array_equal(sitk.GetArrayFromImage(vector), field)
    with pytest.raises(ValueError):
        grid.to_sitk(field)
    with pytest.raises(ValueError):
        grid.to_sitk(scalar, vector=True)


def test_apply_affine_numpy_and_torch():
    """apply_affine(M, x) = A x + t on numpy and torch points (torch keeps dtype and device);
    homogeneous / affine_parts are inverse."""
    from cidir.geometry.affine import affine_parts, apply_affine, homogeneous, linear_determinant

    a = _rotation_3d((0.1, 0.2, 0.3)) * np.array([1.0, 2.0, 0.5])
    t = np.array([1.0, -2.0, 3.5])
    m = homogeneous(a, t)
    la, lt = affine_parts(m)
    np.testing.assert_array_equal(la, a)
    np.testing.assert_array_equal(lt, t)
    assert linear_determinant(m) == pytest.approx(1.0)
    x = np.random.default_rng(7).normal(size=(5, 3))
    np.testing.assert_allclose(apply_affine(m, x), x @ a.T + t, atol=1e-12)
    tx = apply_affine(m, torch.as_tensor(x, dtype=torch.float32))
    assert tx.dtype == torch.float32
    np.testing.assert_allclose(tx.numpy(), x @ a.T + t, atol=1e-5)


def test_phantom_style_helpers():
    """centered: the centre voxel at the given world point; region keeps world positions;
    voxel_step, half_extent, mm_to_voxel_steps, spacing_zyx and vectors_to_voxel_axes."""
    rot = _rotation_3d((0.2, 0.0, -0.3))
    grid = Grid.centered((5, 4, 3), (1.0, 2.0, 3.0), (10.0, 20.0, 30.0), tuple(rot.ravel()))
    np.testing.assert_allclose(grid.center, [10.0, 20.0, 30.0], atol=1e-12)
    sub = grid.region((1, 2, 0), (2, 1, 3))
    np.testing.assert_allclose(sub.world_points(), grid.voxel_to_world(
        np.array([[1, 2, 0], [2, 2, 0], [1, 2, 1], [2, 2, 1], [1, 2, 2], [2, 2, 2]], float)),
        atol=1e-12)
    np.testing.assert_allclose(grid.voxel_step(2), grid.voxel_to_world(np.array([0, 0, 1.0]))
                               - grid.voxel_to_world(np.zeros(3)), atol=1e-12)
    np.testing.assert_allclose(grid.half_extent, [2.0, 3.0, 3.0])
    np.testing.assert_allclose(grid.mm_to_voxel_steps(np.array([2.0, 2.0, 6.0])), [2, 1, 2])
    assert grid.spacing_zyx == (3.0, 2.0, 1.0)
    v = np.random.default_rng(8).normal(size=(4, 3))
    np.testing.assert_allclose(grid.vectors_to_voxel_axes(v) @ rot.T, v, atol=1e-12)
    assert grid.direction_column_major == tuple(rot.T.ravel())


def test_maps_built_under_inference_mode_serve_autograd():
    """Maps first built inside torch.inference_mode are normal tensors: a later training use
    (gradient with respect to the world points) works."""
    grid = Grid((5, 6), (1.0, 2.0), (0.5, -3.0), (0.0, 1.0, 1.0, 0.0))
    with torch.inference_mode():
        grid.maps("cpu", torch.float32).world_to_voxel(torch.zeros(1, 2))
    world = torch.ones(3, 2, requires_grad=True)
    grid.maps("cpu", torch.float32).world_to_voxel(world).sum().backward()
    assert world.grad is not None
