"""Kinematics: det ∇φ of the full map including the initial affine, from the transform's
one assembly point (map_jet), against finite differences of φ itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cidir.config import ModelConfig
from cidir.fields import ConditionedTransform
from cidir.geometry import Grid
from cidir.geometry.kinematics import MapJet, jacobian_determinant, map_jacobian_determinant
from cidir.models import DeformationModel, Jet

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _transform(ndim: int, init: np.ndarray) -> ConditionedTransform:
    torch.manual_seed(0)
    model = DeformationModel(ModelConfig(width=32, output_init_scale=0.3), ndim).double()
    grid = Grid((9, 8, 7)[:ndim], (1.5, 2.0, 2.5)[:ndim], (3.0, -4.0, 5.0)[:ndim],
                tuple(np.eye(ndim).ravel()))
    return ConditionedTransform(model, grid, init)


@pytest.mark.parametrize("ndim", [2, 3])
def test_map_jet_det_is_det_of_full_phi(ndim):
    """map_jet: φ = A(x + u) + t, and det ∇φ = det A · det(I + ∇u) equals the determinant of
    the central-difference Jacobian of φ."""
    init = np.eye(ndim + 1)
    init[:ndim, :ndim] = np.diag([1.1, 0.9, 1.3][:ndim])
    init[0, 1] = 0.05
    init[:ndim, ndim] = 2.0
    transform = _transform(ndim, init)
    x = torch.as_tensor(transform.grid.world_points(np.array([3, 17, 40])), dtype=torch.float64)
    alpha = torch.tensor([[0.4]], dtype=torch.float64)
    jet = transform.map_jet(x, alpha, order=1)
    u = transform.displacement(x, alpha).value
    a, t = torch.as_tensor(init[:ndim, :ndim]), torch.as_tensor(init[:ndim, ndim])
    torch.testing.assert_close(jet.value, (x + u) @ a.T + t)
    h = 1e-4
    columns = []
    for j in range(ndim):
        e = torch.zeros(ndim, dtype=torch.float64)
        e[j] = h
        plus = transform.map_jet(x + e, alpha).value
        minus = transform.map_jet(x - e, alpha).value
        columns.append((plus - minus) / (2 * h))
    numeric = torch.linalg.det(torch.stack(columns, dim=-1))
    torch.testing.assert_close(jet.jacobian_determinant(), numeric, rtol=1e-5, atol=1e-6)
    assert transform.linear_det == pytest.approx(np.linalg.det(init[:ndim, :ndim]))


def test_map_jacobian_determinant_and_missing_jacobian():
    """det(A)·det(I + ∇u) in closed form; asking a value-only jet for det J raises."""
    grad = torch.tensor([[[0.1, 0.2], [0.0, -0.3]]])
    assert float(jacobian_determinant(grad)) == pytest.approx(1.1 * 0.7)
    assert float(map_jacobian_determinant(grad, 2.0)) == pytest.approx(2.0 * 1.1 * 0.7)
    with pytest.raises(ValueError, match="order >= 1"):
        MapJet(torch.zeros(1, 2), Jet(torch.zeros(1, 2))).jacobian_determinant()


def test_map_jet_groups_matches_map_jet():
    """The training assembly (groups, derivatives on the first points of each group) gives
    the same φ and derivatives as map_jet per group."""
    transform = _transform(3, np.eye(4))
    world = torch.as_tensor(transform.grid.world_points(np.arange(24)), dtype=torch.float64)
    world = world.view(2, 12, 3)
    alpha = torch.tensor([[0.2], [0.8]], dtype=torch.float64)
    grouped = transform.map_jet_groups(world, alpha, order=2, derivative_points=5)
    assert grouped.value.shape == (24, 3) and grouped.u.hessian.shape == (10, 3, 6)
    for g in range(2):
        single = transform.map_jet(world[g], alpha[g : g + 1], order=2)
        torch.testing.assert_close(grouped.value[12 * g : 12 * (g + 1)], single.value)
        torch.testing.assert_close(grouped.u.jacobian[5 * g : 5 * (g + 1)], single.u.jacobian[:5])
        torch.testing.assert_close(grouped.u.hessian[5 * g : 5 * (g + 1)], single.u.hessian[:5])
