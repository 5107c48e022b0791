"""Regularizers of a displacement field u, per point (pure functions).

Inputs are exact derivatives **in world millimetres**:
``grad_u`` (B, D, D) with grad_u[b, i, j] = ∂u_i/∂x_j (dimensionless), and
``hess_u`` (B, D, P) with the second derivatives ∂²u_i/∂x_j∂x_k (mm⁻¹) for the pairs
j ≤ k of :func:`cidir.geometry.kinematics.pair_indices`. Each function returns (B,) values;
the objective averages them.
"""

from __future__ import annotations

import torch

from cidir.geometry.kinematics import (
    cofactor,
    deformation_gradient,
    determinant,
    jacobian_determinant,
    pair_indices,
)


def jacobian_penalty(grad_u: torch.Tensor) -> torch.Tensor:
    """|det(I + ∇u) − 1| per point (volume change)."""
    return (jacobian_determinant(grad_u) - 1.0).abs()


def antifolding_penalty(grad_u: torch.Tensor) -> torch.Tensor:
    """max(0, −det(I + ∇u)) per point: penalizes folding only."""
    return torch.relu(-jacobian_determinant(grad_u))


def hyperelastic_penalty(grad_u: torch.Tensor, length: float = 1.0, area: float = 1.0,
                         volume: float = 1.0, eps: float = 1e-6) -> torch.Tensor:
    """Hyperelastic regularizer (Burger et al. 2013, as in IDIR), per point.

    length ½‖∇u‖²_F; area Σ_j max(0, ‖cof(I+∇u)_{:,j}‖² − 1)²; volume (det − 1)⁴ / det²
    (det² floored at ``eps`` so that a degenerate point gives a large but finite penalty).
    """
    length_term = 0.5 * (grad_u**2).sum(dim=(1, 2))
    phi = deformation_gradient(grad_u)
    cof = cofactor(phi)
    area_term = (torch.relu((cof**2).sum(dim=1) - 1.0) ** 2).sum(dim=-1)
    det = determinant(phi)
    volume_term = (det - 1.0) ** 4 / (det**2).clamp_min(eps)
    return length * length_term + area * area_term + volume * volume_term


def bending_energy(hess_u: torch.Tensor) -> torch.Tensor:
    """Σ_i Σ_jk (∂²u_i/∂x_j∂x_k)² per point (mm⁻²); mixed pairs counted twice."""
    ndim = hess_u.shape[1]
    first, second = pair_indices(ndim)
    weights = torch.tensor([1.0 if i == j else 2.0 for i, j in zip(first, second, strict=True)],
                           dtype=hess_u.dtype, device=hess_u.device)
    return ((hess_u**2) * weights).sum(dim=(1, 2))
