"""Regularizers on closed-form fields, checked against autograd derivatives of analytic maps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cidir.losses import regularizers as R
from cidir.models.jet_mlp import pair_indices

pytestmark = pytest.mark.usefixtures("one_torch_thread")


DTYPE = torch.float64


def _autograd_derivatives(fn, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """grad_u (B, D, D) and hess_u (B, D, P) of ``fn`` (D → D) at each point, by
    ``torch.autograd.functional`` — an oracle independent of the library's derivative code."""
    d = points.shape[1]
    first, second = pair_indices(d)
    grads, hessians = [], []
    for x in points:
        grads.append(torch.autograd.functional.jacobian(fn, x))
        h = torch.stack([torch.autograd.functional.hessian(lambda y, i=i: fn(y)[i], x)
                         for i in range(d)])  # (D, D, D)
        hessians.append(h[:, first, second])
    return torch.stack(grads), torch.stack(hessians)


def _points(d: int, n: int = 5, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=DTYPE) * 10.0


def _rotation(d: int, angle: float = 0.4) -> torch.Tensor:
    c, s = np.cos(angle), np.sin(angle)
    if d == 2:
        m = [[c, -s], [s, c]]
    else:
        m = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(0.3), -np.sin(0.3)],
                         [0.0, np.sin(0.3), np.cos(0.3)]])
        m = np.asarray(m) @ tilt
    return torch.as_tensor(np.asarray(m), dtype=DTYPE)


@pytest.mark.parametrize("d", [2, 3])
def test_translation(d):
    """u = t: ∇u = 0 and ∂²u = 0 by autograd; det J = 1, Jacobian penalty and bending 0."""
    t = torch.arange(1.0, d + 1.0, dtype=DTYPE) * 3.7
    grad_u, hess_u = _autograd_derivatives(lambda x: x * 0.0 + t, _points(d))
    assert torch.equal(grad_u, torch.zeros_like(grad_u))
    assert torch.equal(hess_u, torch.zeros_like(hess_u))
    assert torch.allclose(R.jacobian_determinant(grad_u), torch.ones(len(grad_u), dtype=DTYPE))
    assert torch.equal(R.jacobian_penalty(grad_u), torch.zeros(len(grad_u), dtype=DTYPE))
    assert torch.equal(R.bending_energy(hess_u), torch.zeros(len(grad_u), dtype=DTYPE))
    assert torch.equal(R.antifolding_penalty(grad_u), torch.zeros(len(grad_u), dtype=DTYPE))
    assert torch.equal(R.hyperelastic_penalty(grad_u), torch.zeros(len(grad_u), dtype=DTYPE))


@pytest.mark.parametrize("d", [2, 3])
def test_linear_field(d):
    """u = A·x: autograd ∇u = A, ∂²u = 0; det(I + A) and the penalty match numpy."""
    g = torch.Generator().manual_seed(d)
    a = 0.3 * torch.randn(d, d, generator=g, dtype=DTYPE)
    grad_u, hess_u = _autograd_derivatives(lambda x: a @ x, _points(d))
    assert torch.allclose(grad_u, a.expand_as(grad_u), atol=1e-14)
    assert torch.allclose(hess_u, torch.zeros_like(hess_u), atol=1e-14)
    expected = np.linalg.det(np.eye(d) + a.numpy())
    np.testing.assert_allclose(R.jacobian_determinant(grad_u).numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(R.jacobian_penalty(grad_u).numpy(), abs(expected - 1.0),
                               rtol=1e-10)
    assert torch.allclose(R.bending_energy(hess_u), torch.zeros(len(hess_u), dtype=DTYPE),
                          atol=1e-20)
    # a batch of random matrices against numpy's determinant
    batch = torch.randn(50, d, d, generator=g, dtype=DTYPE)
    np.testing.assert_allclose(R.determinant(batch).numpy(), np.linalg.det(batch.numpy()),
                               rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("d", [2, 3])
def test_quadratic_field_bending(d):
    """u_i = ½ xᵀQ_i x: autograd Hessian is Q_i (pair layout), bending = Σ_i ‖Q_i‖²_F."""
    g = torch.Generator().manual_seed(10 + d)
    q = torch.randn(d, d, d, generator=g, dtype=DTYPE)
    q = 0.5 * (q + q.transpose(1, 2))  # symmetric Q_i

    def field(x):
        return 0.5 * torch.einsum("j,ijk,k->i", x, q, x)

    grad_u, hess_u = _autograd_derivatives(field, _points(d, n=3))
    first, second = pair_indices(d)
    assert torch.allclose(hess_u, q[:, first, second].expand_as(hess_u), atol=1e-12)
    expected = float((q**2).sum())
    np.testing.assert_allclose(R.bending_energy(hess_u).numpy(), expected, rtol=1e-12)
    # the closed-form pair layout (not autograd) gives the same
    closed = q[:, first, second].unsqueeze(0)
    np.testing.assert_allclose(R.bending_energy(closed).numpy(), expected, rtol=1e-12)


def test_bending_counts_mixed_pairs_twice():
    """A single mixed second derivative ∂²u_0/∂x∂y = 1 gives energy 2 (xy and yx)."""
    hess = torch.zeros(1, 2, 3, dtype=DTYPE)  # pairs (0,0), (0,1), (1,1)
    hess[0, 0, 1] = 1.0
    assert float(R.bending_energy(hess)) == 2.0
    hess = torch.zeros(1, 2, 3, dtype=DTYPE)
    hess[0, 1, 2] = 3.0
    assert float(R.bending_energy(hess)) == 9.0


@pytest.mark.parametrize("d", [2, 3])
def test_hyperelastic_identity_and_rotation(d):
    """Identity: 0. Rotation u = (R − I)x: length ½‖R − I‖²_F, area 0, volume 0."""
    zero = torch.zeros(2, d, d, dtype=DTYPE)
    assert torch.equal(R.hyperelastic_penalty(zero), torch.zeros(2, dtype=DTYPE))
    rot = _rotation(d)
    grad_u, _ = _autograd_derivatives(lambda x: rot @ x - x, _points(d, n=2))
    assert torch.allclose(grad_u, (rot - torch.eye(d, dtype=DTYPE)).expand_as(grad_u))
    length = 0.5 * float(((rot - torch.eye(d, dtype=DTYPE)) ** 2).sum())
    assert length > 0.01
    only_length = R.hyperelastic_penalty(grad_u, 1.0, 0.0, 0.0)
    only_area = R.hyperelastic_penalty(grad_u, 0.0, 1.0, 0.0)
    only_volume = R.hyperelastic_penalty(grad_u, 0.0, 0.0, 1.0)
    np.testing.assert_allclose(only_length.numpy(), length, rtol=1e-12)
    np.testing.assert_allclose(only_area.numpy(), 0.0, atol=1e-24)
    np.testing.assert_allclose(only_volume.numpy(), 0.0, atol=1e-24)
    np.testing.assert_allclose(R.hyperelastic_penalty(grad_u, 2.0, 5.0, 7.0).numpy(),
                               2.0 * length, rtol=1e-10)


def test_hyperelastic_scaling_closed_form():
    """A uniform 3D scaling s·I: length ½·3(s−1)², area 3((s²)² − 1)², volume (s³−1)⁴/s⁶."""
    s = 1.2
    grad_u = torch.eye(3, dtype=DTYPE).unsqueeze(0) * (s - 1.0)
    length = 0.5 * 3 * (s - 1.0) ** 2
    area = 3 * (s**4 - 1.0) ** 2  # cofactor columns have norm s², squared s⁴
    volume = (s**3 - 1.0) ** 4 / s**6
    np.testing.assert_allclose(R.hyperelastic_penalty(grad_u, 1.0, 0.0, 0.0).numpy(), length)
    np.testing.assert_allclose(R.hyperelastic_penalty(grad_u, 0.0, 1.0, 0.0).numpy(), area)
    np.testing.assert_allclose(R.hyperelastic_penalty(grad_u, 0.0, 0.0, 1.0).numpy(), volume)


@pytest.mark.parametrize("d", [2, 3])
def test_antifolding(d):
    """max(0, −det): 0 for det > 0, −det for a reflection-like I + A."""
    g = torch.Generator().manual_seed(20 + d)
    grad_u = 0.2 * torch.randn(4, d, d, generator=g, dtype=DTYPE)
    assert torch.all(R.jacobian_determinant(grad_u) > 0)
    assert torch.equal(R.antifolding_penalty(grad_u), torch.zeros(4, dtype=DTYPE))
    reflection = torch.diag(torch.tensor([-1.5] + [1.0] * (d - 1), dtype=DTYPE))
    a = (reflection - torch.eye(d, dtype=DTYPE)).unsqueeze(0)
    det = R.jacobian_determinant(a)
    assert float(det) == pytest.approx(-1.5)
    assert float(R.antifolding_penalty(a)) == pytest.approx(1.5)
    assert float(R.jacobian_penalty(a)) == pytest.approx(2.5)


@pytest.mark.parametrize("d", [2, 3])
def test_cofactor_is_det_inverse_transpose(d):
    """cof(A) = det(A)·A⁻ᵀ for random invertible matrices."""
    g = torch.Generator().manual_seed(30 + d)
    a = torch.randn(20, d, d, generator=g, dtype=DTYPE) + 2.0 * torch.eye(d, dtype=DTYPE)
    expected = torch.linalg.det(a)[:, None, None] * torch.linalg.inv(a).transpose(1, 2)
    assert torch.allclose(R.cofactor(a), expected, atol=1e-10)


@pytest.mark.parametrize("d", [2, 3])
def test_gradcheck(d):
    """float64 gradcheck of every regularizer function (away from the |·| and max kinks)."""
    g = torch.Generator().manual_seed(40 + d)
    grad_u = (0.2 * torch.randn(3, d, d, generator=g, dtype=DTYPE)).requires_grad_()
    p = d * (d + 1) // 2
    hess_u = torch.randn(3, d, p, generator=g, dtype=DTYPE, requires_grad=True)
    with torch.no_grad():
        det = R.jacobian_determinant(grad_u)
    assert torch.all((det - 1.0).abs() > 1e-3)  # away from the kink of |det − 1|
    assert torch.autograd.gradcheck(R.jacobian_penalty, (grad_u,))
    assert torch.autograd.gradcheck(R.hyperelastic_penalty, (grad_u,))
    assert torch.autograd.gradcheck(R.bending_energy, (hess_u,))
    assert torch.autograd.gradcheck(R.determinant, (grad_u,))
    assert torch.autograd.gradcheck(R.cofactor, (grad_u,))
    assert torch.autograd.gradcheck(R.jacobian_determinant, (grad_u,))
    # antifolding where it is active (det < 0): a reflection plus noise
    flip = torch.diag(torch.tensor([-2.0] + [0.0] * (d - 1), dtype=DTYPE))
    folded = (flip + 0.1 * torch.randn(3, d, d, generator=g, dtype=DTYPE)).requires_grad_()
    assert torch.all(R.jacobian_determinant(folded.detach()) < -0.1)
    assert torch.autograd.gradcheck(R.antifolding_penalty, (folded,))
    # the hyperelastic area term where it is active (stretching)
    stretched = (0.5 * torch.eye(d, dtype=DTYPE) + 0.05 * grad_u.detach()).requires_grad_()
    assert torch.autograd.gradcheck(
        lambda x: R.hyperelastic_penalty(x, 0.0, 1.0, 0.0), (stretched,))


# --------------------------------------------------------------- physical-space invariance
_CENTRES = torch.tensor([[8.0, 10.0, 5.0], [20.0, 18.0, 7.0], [14.0, 6.0, 4.0]], dtype=DTYPE)
_AMPLITUDES = torch.tensor([[2.0, -1.0, 1.5], [-1.5, 2.0, 1.0], [1.0, 1.0, -2.0]], dtype=DTYPE)
_SIGMA = 5.0


def _gaussians(x: torch.Tensor) -> torch.Tensor:
    """A smooth displacement in world mm (sum of Gaussians), for one point (3,) → (3,)."""
    r2 = ((x[None, :] - _CENTRES) ** 2).sum(dim=-1)
    return (torch.exp(-r2 / (2 * _SIGMA**2))[:, None] * _AMPLITUDES).sum(dim=0)


def _voxel_centres(size: tuple[int, int, int], spacing: tuple[float, float, float]):
    axes = [(torch.arange(n, dtype=DTYPE) + 0.5) * s for n, s in zip(size, spacing, strict=True)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], dim=-1)


def _mean_penalties(points: torch.Tensor, field, half_extent: torch.Tensor | None):
    """Mean bending energy and Jacobian penalty of ``field`` over ``points`` (exact autograd
    derivatives via torch.func). With ``half_extent`` the derivatives are taken the IDIR way:
    points and displacements in per-axis normalized units x_n = x / h (h per axis)."""
    if half_extent is not None:
        h = half_extent

        def fn(xn):
            return field(xn * h) / h
    else:
        fn = field
        h = torch.ones(3, dtype=DTYPE)
    x = points / h
    jac = torch.func.vmap(torch.func.jacrev(fn))(x)
    hess = torch.func.vmap(torch.func.jacfwd(torch.func.jacrev(fn)))(x)  # (B, i, j, k)
    first, second = pair_indices(3)
    hess_u = hess[:, :, first, second]
    return float(R.bending_energy(hess_u).mean()), float(R.jacobian_penalty(jac).mean())


@pytest.mark.filterwarnings("ignore:.*torch.jit.script.*:DeprecationWarning")  # torch.func import
def test_regularizers_in_mm_do_not_depend_on_voxel_spacing():
    """The same physical field on a 1×1×1 mm and a 1×1×3 mm grid of one 27×24×12 mm box gives
    the same mean bending energy and Jacobian penalty in mm (within sampling error), whereas
    IDIR's per-axis linspace(−1, 1) normalization gives grid-dependent bending energies."""
    iso_size, iso_spacing = (27, 24, 12), (1.0, 1.0, 1.0)
    aniso_size, aniso_spacing = (27, 24, 4), (1.0, 1.0, 3.0)
    iso = _voxel_centres(iso_size, iso_spacing)
    aniso = _voxel_centres(aniso_size, aniso_spacing)
    bend_iso, jac_iso = _mean_penalties(iso, _gaussians, None)
    bend_aniso, jac_aniso = _mean_penalties(aniso, _gaussians, None)
    assert bend_iso > 1e-3 and jac_iso > 1e-2  # non-trivial field
    assert bend_aniso == pytest.approx(bend_iso, rel=0.03)
    assert jac_aniso == pytest.approx(jac_iso, rel=0.03)

    def half_extent(size, spacing):  # linspace(-1, 1) over the voxel centres of each axis
        return torch.tensor([(n - 1) * s / 2.0 for n, s in zip(size, spacing, strict=True)],
                            dtype=DTYPE)

    bend_iso_n, jac_iso_n = _mean_penalties(iso, _gaussians, half_extent(iso_size, iso_spacing))
    bend_aniso_n, jac_aniso_n = _mean_penalties(aniso, _gaussians,
                                                half_extent(aniso_size, aniso_spacing))
    assert abs(bend_aniso_n / bend_iso_n - 1.0) > 0.15  # normalized units: grid-dependent
    # det(I + ∇u) is a similarity invariant, so IDIR's Jacobian term happens to agree
    assert jac_aniso_n == pytest.approx(jac_aniso, rel=1e-9)
    assert jac_iso_n == pytest.approx(jac_iso, rel=1e-9)
