"""Kinematics of a map φ(x) = A·(x + u(x)) + t: jets of u, deformation gradients, det J.

Pure tensor functions at the bottom of the package tree (they import nothing from models,
fields or losses): the network (:mod:`cidir.models.jet_mlp`) produces :class:`Jet` s, the
transform (:class:`cidir.fields.ConditionedTransform`) gives a :class:`MapJet` in world mm,
and the regularizers, the dense Jacobian map and the α search read their derivatives here.

Shapes: ``grad_u`` (B, D, D) with grad_u[b, i, j] = ∂u_i/∂x_j (dimensionless when u and x
are in mm); second derivatives (B, D, P) for the P = D(D+1)/2 pairs j ≤ k of
:func:`pair_indices` (mm⁻¹). D = 2 or 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def pair_indices(ndim: int) -> tuple[list[int], list[int]]:
    """Index pairs (i, j), i ≤ j, ordering the stored second derivatives."""
    first, second = [], []
    for i in range(ndim):
        for j in range(i, ndim):
            first.append(i)
            second.append(j)
    return first, second


@dataclass
class Jet:
    """u (B, D_out); jacobian (B, D_out, D) = ∂u_o/∂x_i; hessian (B, D_out, P) = ∂²u_o/∂x_i∂x_j
    for the pairs of :func:`pair_indices` (None when not requested)."""

    value: torch.Tensor
    jacobian: torch.Tensor | None = None
    hessian: torch.Tensor | None = None


def deformation_gradient(grad_u: torch.Tensor) -> torch.Tensor:
    """I + ∇u, (B, D, D)."""
    eye = torch.eye(grad_u.shape[-1], dtype=grad_u.dtype, device=grad_u.device)
    return grad_u + eye


def determinant(matrix: torch.Tensor) -> torch.Tensor:
    """det of (B, D, D) matrices, D = 2 or 3, in closed form (fast and twice differentiable)."""
    d = matrix.shape[-1]
    m = matrix
    if d == 2:
        return m[:, 0, 0] * m[:, 1, 1] - m[:, 0, 1] * m[:, 1, 0]
    if d == 3:
        return (
            m[:, 0, 0] * (m[:, 1, 1] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 1])
            - m[:, 0, 1] * (m[:, 1, 0] * m[:, 2, 2] - m[:, 1, 2] * m[:, 2, 0])
            + m[:, 0, 2] * (m[:, 1, 0] * m[:, 2, 1] - m[:, 1, 1] * m[:, 2, 0])
        )
    raise ValueError(f"expected 2×2 or 3×3 matrices, found {tuple(matrix.shape)}")


def cofactor(matrix: torch.Tensor) -> torch.Tensor:
    """Cofactor matrix of (B, D, D) matrices, D = 2 or 3 (= det·A⁻ᵀ for invertible A)."""
    d = matrix.shape[-1]
    m = matrix
    if d == 2:
        return torch.stack(
            [torch.stack([m[:, 1, 1], -m[:, 1, 0]], -1),
             torch.stack([-m[:, 0, 1], m[:, 0, 0]], -1)],
            dim=1,
        )
    if d == 3:
        rows = [torch.linalg.cross(m[:, (i + 1) % 3], m[:, (i + 2) % 3], dim=-1) for i in range(3)]
        return torch.stack(rows, dim=1)
    raise ValueError(f"expected 2×2 or 3×3 matrices, found {tuple(matrix.shape)}")


def jacobian_determinant(grad_u: torch.Tensor) -> torch.Tensor:
    """det(I + ∇u) per point: the volume change of x ↦ x + u(x)."""
    return determinant(deformation_gradient(grad_u))


def map_jacobian_determinant(grad_u: torch.Tensor, linear_det: float = 1.0) -> torch.Tensor:
    """det ∇φ per point for φ(x) = A·(x + u(x)) + t: det(A) · det(I + ∇u).

    ``linear_det`` is det A, the volume change of the initial affine (1 without one)."""
    return linear_det * jacobian_determinant(grad_u)


@dataclass
class MapJet:
    """φ at points in world mm, with the jet of its displacement u.

    Attributes:
        value: φ(x) = A·(x + u(x)) + t, (B, D) world mm (LPS).
        u: u in mm, ∇u (dimensionless) and second derivatives (mm⁻¹), with respect to world
            mm, at the points where derivatives were asked for.
        linear_det: det A of the initial affine (1.0 without one).
    """

    value: torch.Tensor
    u: Jet
    linear_det: float = 1.0

    def jacobian_determinant(self) -> torch.Tensor:
        """det ∇φ at the derivative points (needs ∇u: order ≥ 1)."""
        if self.u.jacobian is None:
            raise ValueError("det ∇φ needs the Jacobian of u: evaluate with order >= 1")
        return map_jacobian_determinant(self.u.jacobian, self.linear_det)
