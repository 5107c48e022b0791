"""Models: exact forward-propagated derivatives, the harmonizer and the three model kinds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cidir.config import ModelConfig
from cidir.fields import ConditionedTransform
from cidir.geometry import Grid
from cidir.models import DeformationModel, Harmonizer, JetMLP, pair_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(kind: str = "cidir", **kwargs) -> ModelConfig:
    base = {"kind": kind, "width": 32, "hidden_layers": 3, "harmonizer_widths": (16, 8)}
    base.update(kwargs)
    return ModelConfig(**base)


def _perturb(model: DeformationModel, seed: int, scale: float = 0.3) -> DeformationModel:
    """Random harmonizer head (so a, b, c, d differ from 1, 1, 0, 0) and a larger output
    layer (so u and its derivatives are far from 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if model.harmonizer is not None:
            head = model.harmonizer.head
            head.weight.copy_(scale * torch.randn(head.weight.shape, generator=g))
            head.bias.copy_(scale * torch.randn(head.bias.shape, generator=g))
        out = model.mlp.output
        out.weight.copy_(0.1 * torch.randn(out.weight.shape, generator=g))
        out.bias.copy_(0.01 * torch.randn(out.bias.shape, generator=g))
    return model


def _points(d: int, n: int = 7, seed: int = 0, dtype=torch.float64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, d, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)


def _autograd_jet(fn, x: torch.Tensor):
    """Value, Jacobian (B, D, D) and pair-Hessian (B, D, P) of a pointwise map by nested
    ``torch.autograd.grad`` (IDIR's way)."""
    x = x.clone().requires_grad_(True)
    value = fn(x)
    d = x.shape[1]
    jac = torch.stack(
        [torch.autograd.grad(value[:, i].sum(), x, create_graph=True)[0] for i in range(d)],
        dim=1)
    first, second = pair_indices(d)
    hess = torch.zeros(x.shape[0], d, len(first), dtype=x.dtype)
    for i in range(d):
        for p, (j, k) in enumerate(zip(first, second, strict=True)):
            if not jac.requires_grad:
                continue
            g = torch.autograd.grad(jac[:, i, j].sum(), x, retain_graph=True,
                                    allow_unused=True)[0]
            if g is not None:
                hess[:, i, p] = g[:, k]
    return value.detach(), jac.detach(), hess


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max().detach() / b.abs().max().detach().clamp_min(1e-300))


@pytest.mark.parametrize("kind", ["cidir", "siren", "relu"])
@pytest.mark.parametrize("d", [2, 3])
def test_jet_matches_nested_autograd(kind, d):
    """Order-1 and order-2 jets equal nested autograd derivatives to 1e-10 relative (float64),
    with random harmonizer parameters for the cidir kind."""
    torch.manual_seed(0)
    model = _perturb(DeformationModel(_config(kind), d), seed=1).double()
    alpha = torch.tensor([[0.37]], dtype=torch.float64)
    if kind == "cidir":
        params = model.activation_params(alpha)
        assert not torch.allclose(params, torch.tensor([1.0, 1.0, 0.0, 0.0], dtype=params.dtype))
    x = _points(d)
    value, jac, hess = _autograd_jet(lambda p: model(p, alpha).value, x)
    assert float(jac.abs().max()) > 1e-2  # non-trivial field
    jet1 = model(x, alpha, order=1)
    jet2 = model(x, alpha, order=2)
    assert jet1.hessian is None
    for jet in (jet1, jet2):
        assert _rel_err(jet.value, value) < 1e-10
        assert _rel_err(jet.jacobian, jac) < 1e-10
    assert jet2.hessian.shape == (x.shape[0], d, d * (d + 1) // 2)
    if kind == "relu":
        assert torch.equal(jet2.hessian, torch.zeros_like(jet2.hessian))
        assert torch.equal(hess, torch.zeros_like(hess))
    else:
        assert float(hess.abs().max()) > 1e-2
        assert _rel_err(jet2.hessian, hess) < 1e-10


def test_transform_derivatives_are_in_mm():
    """ConditionedTransform.displacement: value in mm, ∂u/∂x dimensionless and second
    derivatives in mm⁻¹, equal to autograd of u in world coordinates (anisotropic grid)."""
    torch.manual_seed(1)
    model = _perturb(DeformationModel(_config(), 3), seed=2).double()
    grid = Grid((20, 16, 6), (0.8, 0.9, 2.5), (-30.0, 12.0, 100.0),
                tuple(np.eye(3)[[1, 0, 2]].ravel() * np.array([1, 1, 1, 1, 1, 1, 1, 1, -1])))
    transform = ConditionedTransform(model, grid)
    alpha = transform.alpha_tensor(0.6).double()
    world = grid.voxel_to_world(_points(3) * 5 + torch.tensor([10.0, 8.0, 3.0],
                                                              dtype=torch.float64))
    value, jac, hess = _autograd_jet(lambda p: transform.displacement(p, alpha).value, world)
    jet = transform.displacement(world, alpha, order=2)
    net = model(grid.world_to_network(world), alpha).value
    # the transform keeps the grid centre in float32 (world points are float32 in use)
    torch.testing.assert_close(jet.value, net * grid.scale, rtol=1e-6, atol=1e-5)
    assert _rel_err(jet.value, value) < 1e-10
    assert _rel_err(jet.jacobian, jac) < 1e-10
    assert _rel_err(jet.hessian, hess) < 1e-10


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_cidir_at_init_is_plain_siren(alpha):
    """At initialization the harmonizer outputs a = b = 1, c = d = 0 for every α, so the cidir
    model equals the same network with fixed SIREN activations (params=None)."""
    torch.manual_seed(2)
    model = DeformationModel(_config(), 3)
    a = torch.tensor([[alpha]])
    params = model.activation_params(a)
    expected = torch.tensor([1.0, 1.0, 0.0, 0.0]).expand(1, 3, 4)
    assert torch.equal(params, expected)
    x = _points(3, n=50, dtype=torch.float32)
    for order in (0, 1, 2):
        conditioned = model(x, a, order=order)
        plain = model.mlp(x, None, order=order)
        torch.testing.assert_close(conditioned.value, plain.value, rtol=1e-6, atol=1e-9)
        if order:
            torch.testing.assert_close(conditioned.jacobian, plain.jacobian, rtol=1e-6,
                                       atol=1e-9)


def test_harmonizer_keeps_a_b_positive():
    """For random (large) harmonizer weights a, b > 0 and all four outputs are finite."""
    torch.manual_seed(3)
    harmonizer = Harmonizer(2, 4, widths=(16, 8))
    with torch.no_grad():
        for p in harmonizer.parameters():
            p.copy_(torch.randn_like(p) * 2.0)
    alpha = torch.rand(64, 2)
    params = harmonizer(alpha).detach()
    assert params.shape == (64, 4, 4)
    assert torch.all(params[..., 0] > 0) and torch.all(params[..., 1] > 0)
    assert torch.isfinite(params).all()
    assert float(params[..., 2].abs().max()) > 1e-2  # c, d are free in sign and size
    assert float((params[..., 3] < 0).float().mean()) > 0.0
    with pytest.raises(ValueError):
        harmonizer(torch.rand(5, 3))


def test_shared_activation_is_identical_across_layers():
    """shared_activation=True: one (a, b, c, d) repeated for every hidden layer."""
    torch.manual_seed(4)
    model = _perturb(DeformationModel(_config(shared_activation=True, hidden_layers=4), 2), 5)
    params = model.activation_params(torch.tensor([[0.2], [0.9]]))
    assert params.shape == (2, 4, 4)
    for layer in range(1, 4):
        assert torch.equal(params[:, layer], params[:, 0])
    assert not torch.allclose(params[0], params[1])  # but α still matters
    unshared = _perturb(DeformationModel(_config(hidden_layers=4), 2), 5)
    p = unshared.activation_params(torch.tensor([[0.2]]))
    assert not torch.allclose(p[:, 1], p[:, 0])


def test_vector_alpha():
    """num_conditions = 2: α of shape (1, 2) is accepted and each component changes u."""
    torch.manual_seed(5)
    model = _perturb(DeformationModel(_config(), 3, num_conditions=2), 6)
    x = _points(3, dtype=torch.float32)
    u = {a: model(x, torch.tensor([a])).value for a in [(0.2, 0.2), (0.8, 0.2), (0.2, 0.8)]}
    assert u[(0.2, 0.2)].shape == (x.shape[0], 3)
    assert not torch.allclose(u[(0.2, 0.2)], u[(0.8, 0.2)])
    assert not torch.allclose(u[(0.2, 0.2)], u[(0.2, 0.8)])
    with pytest.raises(ValueError):
        model(x, torch.tensor([[0.5]]))
    with pytest.raises(ValueError):
        model(x, None)


@pytest.mark.parametrize("kind", ["siren", "relu"])
def test_baselines_ignore_alpha(kind):
    """siren and relu kinds have no harmonizer; α does not change their output."""
    torch.manual_seed(6)
    model = _perturb(DeformationModel(_config(kind), 3), 7)
    assert model.harmonizer is None and not model.conditioned
    assert not any("harmonizer" in name for name in model.state_dict())
    x = _points(3, dtype=torch.float32)
    reference = model(x, None, order=1)
    for alpha in (torch.tensor([[0.0]]), torch.tensor([[1.0]]), torch.rand(x.shape[0], 1)):
        out = model(x, alpha, order=1)
        assert torch.equal(out.value, reference.value)
        assert torch.equal(out.jacobian, reference.jacobian)


@pytest.mark.parametrize("kind", ["cidir", "siren", "relu"])
@pytest.mark.parametrize("d", [2, 3])
def test_output_near_zero_at_init(kind, d):
    """At initialization |u| < 1e-2 network units everywhere in [-1, 1]^D."""
    torch.manual_seed(7)
    model = DeformationModel(_config(kind, width=64), d)
    x = _points(d, n=500, dtype=torch.float32)
    u = model(x, torch.tensor([[0.5]])).value.detach()
    assert float(u.abs().max()) < 1e-2


def test_per_point_and_grouped_alpha_match_separate_groups():
    """α per point (B, K) and α per group with ``repeats`` give the values and derivatives of
    evaluating each group separately with its own α."""
    torch.manual_seed(8)
    model = _perturb(DeformationModel(_config(), 3), 9)
    x = _points(3, n=9, dtype=torch.float32)
    alphas = torch.tensor([[0.1], [0.5], [0.95]])
    repeats = torch.tensor([2, 3, 4])
    starts = [0, 2, 5, 9]
    separate = [model(x[starts[g]:starts[g + 1]], alphas[g:g + 1], order=2) for g in range(3)]
    expected_value = torch.cat([s.value for s in separate])
    expected_hess = torch.cat([s.hessian for s in separate])
    grouped = model(x, alphas, order=2, repeats=repeats)
    per_point = model(x, torch.repeat_interleave(alphas, repeats, dim=0), order=2)
    for out in (grouped, per_point):
        torch.testing.assert_close(out.value, expected_value, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(out.hessian, expected_hess, rtol=1e-5, atol=1e-5)
    # and the groups really differ
    assert not torch.allclose(separate[0].value, model(x[:2], alphas[2:3]).value)
    with pytest.raises(ValueError):
        model(x, alphas)  # 3 α rows for 9 points without repeats


def test_jet_mlp_rejects_bad_input():
    """Wrong point shapes, orders and activations raise ValueError."""
    mlp = JetMLP(3, 16, 2)
    with pytest.raises(ValueError):
        mlp(torch.zeros(4, 2))
    with pytest.raises(ValueError):
        mlp(torch.zeros(4, 3), order=3)
    with pytest.raises(ValueError):
        JetMLP(3, 16, 2, activation="tanh")
