"""Regularizers of a displacement field u, per point (pure functions).

Inputs are exact derivatives **in world millimetres**:
``grad_u`` (B, D, D) with grad_u[b, i, j] = ∂u_i/∂x_j (dimensionless), and
``hess_u`` (B, D, P) with the second derivatives ∂²u_i/∂x_j∂x_k (mm⁻¹) for the pairs
j ≤ k of :func:`cidir.geometry.kinematics.pair_indices`. Each function returns (B,) values;
the objective averages them.

:data:`REGULARIZERS` is the registry: name → function and the derivative order of u it needs
(the config's choices and its ``derivative_order`` are built from it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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


# ----------------------------------------------------------------------------- registry
class RegularizerOptions(Protocol):
    """The options a regularizer may read (an :class:`~cidir.config.ObjectiveConfig`)."""

    @property
    def hyperelastic_length(self) -> float: ...

    @property
    def hyperelastic_area(self) -> float: ...

    @property
    def hyperelastic_volume(self) -> float: ...


@dataclass(frozen=True)
class Regularizer:
    """A registered regularizer: ``evaluate(grad_u, hess_u, options)`` → (B,) values, and the
    derivative ``order`` of u it needs (1: ∇u, 2: second derivatives)."""

    order: int
    evaluate: Callable[[torch.Tensor | None, torch.Tensor | None, RegularizerOptions],
                       torch.Tensor]


def _need(derivative: torch.Tensor | None, name: str, order: int) -> torch.Tensor:
    if derivative is None:
        raise ValueError(f"regularizer {name}: needs the derivatives of u of order {order}")
    return derivative


def _jacobian(grad_u: torch.Tensor | None, hess_u: torch.Tensor | None,
              options: RegularizerOptions) -> torch.Tensor:
    return jacobian_penalty(_need(grad_u, "jacobian", 1))


def _hyperelastic(grad_u: torch.Tensor | None, hess_u: torch.Tensor | None,
                  options: RegularizerOptions) -> torch.Tensor:
    return hyperelastic_penalty(_need(grad_u, "hyperelastic", 1), options.hyperelastic_length,
                                options.hyperelastic_area, options.hyperelastic_volume)


def _bending(grad_u: torch.Tensor | None, hess_u: torch.Tensor | None,
             options: RegularizerOptions) -> torch.Tensor:
    return bending_energy(_need(hess_u, "bending", 2))


def _antifolding(grad_u: torch.Tensor | None, hess_u: torch.Tensor | None,
                 options: RegularizerOptions) -> torch.Tensor:
    return antifolding_penalty(_need(grad_u, "antifolding", 1))


#: The regularizer registry (the order of the names is the order the CLI lists them in).
REGULARIZERS: dict[str, Regularizer] = {
    "jacobian": Regularizer(1, _jacobian),
    "hyperelastic": Regularizer(1, _hyperelastic),
    "bending": Regularizer(2, _bending),
    "antifolding": Regularizer(1, _antifolding),
}
