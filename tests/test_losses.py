"""Similarity, λ(α) mappings and the objective on hand-checkable inputs."""

from __future__ import annotations

import math

import pytest
import torch

from cidir.config import ObjectiveConfig, RegularizerTerm
from cidir.losses import Objective
from cidir.losses.similarity import mse, negative_ncc
from cidir.losses.weights import regularizer_weight

pytestmark = pytest.mark.usefixtures("one_torch_thread")


DTYPE = torch.float64


def test_ncc_of_identical_and_affine_intensities():
    """−NCC is −1 for identical and positively affine-related intensities, +1 for negated."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 500, generator=g, dtype=DTYPE)
    torch.testing.assert_close(negative_ncc(x, x), -torch.ones(3, dtype=DTYPE))
    torch.testing.assert_close(negative_ncc(x, 2.5 * x + 7.0), -torch.ones(3, dtype=DTYPE))
    torch.testing.assert_close(negative_ncc(x, -0.3 * x + 1.0), torch.ones(3, dtype=DTYPE))


def test_ncc_of_independent_noise_is_near_zero():
    """Independent noise: |NCC| ≲ 4/√N."""
    g = torch.Generator().manual_seed(1)
    a = torch.randn(4, 10000, generator=g, dtype=DTYPE)
    b = torch.randn(4, 10000, generator=g, dtype=DTYPE)
    assert float(negative_ncc(a, b).abs().max()) < 0.04


def test_similarity_per_group_shapes():
    """(G, N) inputs give one value per group; groups do not mix."""
    fixed = torch.tensor([[0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0]], dtype=DTYPE)
    warped = torch.tensor([[0.0, 1.0, 2.0, 3.0], [4.0, 3.0, 2.0, 1.0]], dtype=DTYPE)
    ncc = negative_ncc(fixed, warped)
    assert ncc.shape == (2,)
    torch.testing.assert_close(ncc, torch.tensor([-1.0, 1.0], dtype=DTYPE))
    err = mse(fixed, warped)
    assert err.shape == (2,)
    torch.testing.assert_close(err, torch.tensor([0.0, (9 + 1 + 1 + 9) / 4], dtype=DTYPE))


@pytest.mark.parametrize("mapping", ["log", "linear", "constant"])
def test_regularizer_weight_mappings(mapping):
    """λ(0), λ(1), λ(½) of each mapping, and monotone (non-decreasing) in α."""
    lo, hi = 0.01, 100.0
    alpha = torch.linspace(0, 1, 101, dtype=DTYPE)
    lam = regularizer_weight(alpha, lo, hi, mapping)
    expected = {
        "log": (lo, hi, math.sqrt(lo * hi)),
        "linear": (0.0, hi, hi / 2),
        "constant": (hi, hi, hi),
    }[mapping]
    assert float(lam[0]) == pytest.approx(expected[0], rel=1e-12, abs=1e-15)
    assert float(lam[-1]) == pytest.approx(expected[1], rel=1e-12)
    assert float(lam[50]) == pytest.approx(expected[2], rel=1e-12)
    diffs = lam[1:] - lam[:-1]
    if mapping == "constant":
        assert torch.all(diffs == 0)
    else:
        assert torch.all(diffs > 0)
    if mapping == "log":  # equal steps in α are equal ratios in λ
        ratios = lam[1:] / lam[:-1]
        torch.testing.assert_close(ratios, torch.full_like(ratios, float(ratios[0])))


def test_regularizer_weight_rejects_unknown_mapping():
    with pytest.raises(ValueError):
        regularizer_weight(torch.tensor([0.5]), 0.1, 1.0, "cubic")


def _objective() -> Objective:
    return Objective(ObjectiveConfig(
        similarity="mse",
        regularizers=(RegularizerTerm("jacobian", 0.1, 10.0, "log", 0),
                      RegularizerTerm("bending", 0.0, 4.0, "linear", 0)),
    ))


def _inputs():
    """Two groups of 4 intensities (MSE 1 each) and 2 derivative points per group (2D):
    Jacobian penalties (1, 0 | 2, 0), bending energies (2, 0 | 9, 1)."""
    fixed = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]], dtype=DTYPE)
    warped = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 3.0]], dtype=DTYPE)
    grad_u = torch.zeros(4, 2, 2, dtype=DTYPE)
    grad_u[0, 0, 0] = 1.0  # det 2
    grad_u[2, 0, 0] = 2.0  # det 3
    hess_u = torch.zeros(4, 2, 3, dtype=DTYPE)  # pairs (0,0), (0,1), (1,1)
    hess_u[0, 0, 1] = 1.0  # mixed: counted twice → 2
    hess_u[2, 1, 0] = 3.0  # → 9
    hess_u[3, 0, 2] = 1.0  # → 1
    return fixed, warped, grad_u.requires_grad_(), hess_u


def test_objective_total_by_hand():
    """total = mean_g S_g + mean_g λ_jac(α_g)·R̄_jac,g + mean_g λ_bend(α_g)·R̄_bend,g with
    α = (0, 1): λ_jac = (0.1, 10), λ_bend = (0, 4): 1 + (0.05 + 10)/2 + (0 + 20)/2."""
    objective = _objective()
    assert objective.derivative_order == 2
    fixed, warped, grad_u, hess_u = _inputs()
    alpha = torch.tensor([[0.0], [1.0]], dtype=DTYPE)
    torch.testing.assert_close(objective.weights(alpha),
                               torch.tensor([[0.1, 0.0], [10.0, 4.0]], dtype=DTYPE))
    terms = objective(fixed, warped, alpha, grad_u, hess_u)
    assert float(terms.total.detach()) == pytest.approx(16.025, rel=1e-12)
    assert terms.parts["similarity"] == pytest.approx(1.0)
    assert terms.parts["jacobian"] == pytest.approx(0.75)
    assert terms.parts["bending"] == pytest.approx(3.0)
    assert terms.parts["total"] == pytest.approx(16.025)
    terms.total.backward()  # differentiable in the derivatives
    assert float(grad_u.grad.abs().sum()) > 0


def test_objective_groups_use_their_own_weight():
    """Swapping the groups' α swaps which group gets the large λ: 1 + (5 + 0.1)/2 + 4/2."""
    objective = _objective()
    fixed, warped, grad_u, hess_u = _inputs()
    alpha = torch.tensor([[1.0], [0.0]], dtype=DTYPE)
    terms = objective(fixed, warped, alpha, grad_u, hess_u)
    assert float(terms.total.detach()) == pytest.approx(5.55, rel=1e-12)


def test_objective_without_regularizers():
    """No regularizers: total = mean similarity (NCC), derivative order 0."""
    objective = Objective(ObjectiveConfig(similarity="ncc", regularizers=()))
    assert objective.derivative_order == 0
    fixed, warped, _, _ = _inputs()
    fixed = fixed + torch.arange(4, dtype=DTYPE)
    warped = warped + torch.arange(4, dtype=DTYPE)
    terms = objective(fixed, warped, torch.tensor([[0.3], [0.6]], dtype=DTYPE))
    expected = negative_ncc(fixed, warped).mean()
    assert float(terms.total) == pytest.approx(float(expected))
    assert set(terms.parts) == {"similarity", "total"}


def test_objective_hyperelastic_weights_from_config():
    """The hyperelastic term uses the config's length/area/volume weights."""
    config = ObjectiveConfig(similarity="mse",
                             regularizers=(RegularizerTerm("hyperelastic", 1.0, 1.0, "constant"),),
                             hyperelastic_length=2.0, hyperelastic_area=0.0,
                             hyperelastic_volume=0.0)
    objective = Objective(config)
    grad_u = torch.zeros(1, 3, 3, dtype=DTYPE)
    grad_u[0, 0, 1] = 0.5
    values = objective.regularizer_values(grad_u, None)
    assert float(values["hyperelastic"][0]) == pytest.approx(2.0 * 0.5 * 0.25)
