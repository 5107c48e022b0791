"""The trained transform in world millimetres: φ(x; α) = A·(x + u(x; α)) + t.

x is a world point of the fixed image (mm, LPS); u is the network's displacement, converted
from the fixed grid's network frame (isotropic scale, so ∇u is the same in both frames and
second derivatives scale by 1/scale); (A, t) is an optional initial affine alignment
fixed → moving (identity by default). φ maps fixed points to moving points: the moving image
is sampled at φ(x) (the resampling convention of ITK).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cidir.geometry import Grid
from cidir.models import DeformationModel, Jet


class ConditionedTransform:
    """A deformation model bound to the fixed grid (and an initial affine), in world mm."""

    def __init__(self, model: DeformationModel, grid: Grid,
                 init_matrix: np.ndarray | None = None) -> None:
        d = grid.ndim
        if model.ndim != d:
            raise ValueError(f"model is {model.ndim}D but the grid is {d}D")
        self.model = model
        self.grid = grid
        self.init_matrix = np.eye(d + 1) if init_matrix is None else np.asarray(init_matrix, float)
        if self.init_matrix.shape != (d + 1, d + 1):
            raise ValueError(f"init_matrix: expected shape {(d + 1, d + 1)}, "
                             f"found {self.init_matrix.shape}")
        self._center = torch.as_tensor(grid.center, dtype=torch.float32)
        self._scale = float(grid.scale)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @property
    def has_init(self) -> bool:
        return not np.allclose(self.init_matrix, np.eye(self.ndim + 1))

    def alpha_tensor(self, alpha: float | Sequence[float] | torch.Tensor) -> torch.Tensor:
        """α as a (1, K) float32 tensor on the model's device; checks α ∈ [0, 1]."""
        a = torch.as_tensor(alpha, dtype=torch.float32).reshape(1, -1)
        k = self.model.num_conditions
        if a.shape[1] == 1 and k > 1:
            a = a.expand(1, k)
        if a.shape[1] != k:
            raise ValueError(f"α: expected {k} value(s), found {a.shape[1]}")
        if not torch.all((a >= 0) & (a <= 1)):
            raise ValueError(f"α: expected values in [0, 1], found {a.flatten().tolist()}")
        return a.to(self.device)

    def to_network(self, world: torch.Tensor) -> torch.Tensor:
        return (world - self._center.to(world.device)) / self._scale

    def displacement(self, world: torch.Tensor, alpha: torch.Tensor | None, order: int = 0,
                     repeats: torch.Tensor | None = None) -> Jet:
        """u at world points (B, D) float32: value in mm, Jacobian ∂u_i/∂x_j (dimensionless),
        second derivatives in mm⁻¹. ``alpha``: (1 or G, K) tensor (see DeformationModel)."""
        jet = self.model(self.to_network(world), alpha, order, repeats)
        value = jet.value * self._scale
        hessian = jet.hessian / self._scale if jet.hessian is not None else None
        return Jet(value, jet.jacobian, hessian)

    def apply_init(self, points: torch.Tensor) -> torch.Tensor:
        """(A, t) applied to world points (B, D) (identity when there is no initial affine)."""
        if not self.has_init:
            return points
        m = torch.as_tensor(self.init_matrix, dtype=points.dtype, device=points.device)
        d = self.ndim
        return points @ m[:d, :d].T + m[:d, d]

    def map_world(self, world: torch.Tensor, alpha: torch.Tensor,
                  repeats: torch.Tensor | None = None) -> torch.Tensor:
        """φ(x) for world points (B, D) tensor on the device (differentiable)."""
        return self.apply_init(world + self.displacement(world, alpha, 0, repeats).value)

    @torch.no_grad()
    def map_points(self, points_world: np.ndarray, alpha: float | Sequence[float],
                   chunk_size: int = 65536) -> np.ndarray:
        """φ(x) for world points (N, D) numpy (mm, LPS), float64 result (mm, LPS)."""
        points_world = np.asarray(points_world, dtype=np.float64)
        a = self.alpha_tensor(alpha)
        out = np.empty_like(points_world)
        for start in range(0, len(points_world), chunk_size):
            p = points_world[start : start + chunk_size]
            x = torch.as_tensor(p, dtype=torch.float32, device=self.device)
            u = self.displacement(x, a).value.double().cpu().numpy()
            out[start : start + chunk_size] = p + u
        d = self.ndim
        return out @ self.init_matrix[:d, :d].T + self.init_matrix[:d, d]
