"""The trained transform in world millimetres: φ(x; α) = A·(x + u(x; α)) + t.

x is a world point of the fixed image (mm, LPS); u is the network's displacement, converted
from the fixed grid's network frame (isotropic scale, so ∇u is the same in both frames and
second derivatives scale by 1/scale); (A, t) is an optional initial affine alignment
fixed → moving (identity by default). φ maps fixed points to moving points: the moving image
is sampled at φ(x) (the resampling convention of ITK).

:meth:`ConditionedTransform.map_jet` (and :meth:`~ConditionedTransform.map_jet_groups` for
the training batches) is the one place where φ and the derivatives of u are assembled; the
trainer, the dense evaluators and the α search all call it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cidir.geometry import Grid, GridMaps, apply_affine
from cidir.geometry.affine import linear_determinant
from cidir.geometry.frames import Network, World
from cidir.geometry.kinematics import Jet, MapJet
from cidir.models import DeformationModel


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
        #: det A of the initial affine: det ∇φ = linear_det · det(I + ∇u)
        self.linear_det = linear_determinant(self.init_matrix)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def ndim(self) -> int:
        return self.grid.ndim

    @property
    def num_conditions(self) -> int:
        """Values of α the model is conditioned on (one per conditioned hyperparameter)."""
        return self.model.num_conditions

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

    def frozen(self, alpha: float | Sequence[float] | torch.Tensor) -> ConditionedTransform:
        """This transform at one α, with the harmonizer's output folded into the network
        (:meth:`DeformationModel.frozen`): the same φ and derivatives (to float32 rounding),
        about 1.5× faster to evaluate (benchmarks/frozen_speed.py); α passed to its methods
        is ignored. For inference."""
        model = self.model.frozen(self.alpha_tensor(alpha))
        return self if model is self.model else ConditionedTransform(
            model, self.grid, self.init_matrix)

    def maps(self, device: torch.device) -> GridMaps:
        """The fixed grid's frame maps on ``device`` (float32, the network's dtype)."""
        return self.grid.maps(device, torch.float32)

    def to_network(self, world: World[torch.Tensor]) -> Network[torch.Tensor]:
        return self.maps(world.device).world_to_network(world)

    def displacement(self, world: World[torch.Tensor], alpha: torch.Tensor | None,
                     order: int = 0, repeats: torch.Tensor | None = None) -> Jet:
        """u at world points (B, D) float32: value in mm, Jacobian ∂u_i/∂x_j (dimensionless),
        second derivatives in mm⁻¹. ``alpha``: (1 or G, K) tensor (see DeformationModel)."""
        maps = self.maps(world.device)
        jet = self.model(maps.world_to_network(world), alpha, order, repeats)
        value = jet.value * maps.scale
        hessian = jet.hessian / maps.scale if jet.hessian is not None else None
        return Jet(value, jet.jacobian, hessian)

    def apply_init(self, points: World[torch.Tensor]) -> World[torch.Tensor]:
        """(A, t) applied to world points (B, D) (identity when there is no initial affine)."""
        if not self.has_init:
            return points
        return apply_affine(self.init_matrix, points)

    def map_jet(self, world: World[torch.Tensor], alpha: torch.Tensor, order: int = 0,
                repeats: torch.Tensor | None = None) -> MapJet:
        """φ(x) for world points (B, D) float32 on the device, with the jet of u to ``order``
        (0, 1 or 2; see :meth:`displacement`). Differentiable."""
        jet = self.displacement(world, alpha, order, repeats)
        return MapJet(self.apply_init(world + jet.value), jet, self.linear_det)

    def map_jet_groups(self, world: World[torch.Tensor], alpha: torch.Tensor, order: int,
                       derivative_points: int) -> MapJet:
        """φ for G groups of N world points, (G, N, D), group g at α row g of ``alpha`` (G, K);
        the jet of u to ``order`` at the first ``derivative_points`` points of each group.

        Returns φ as (G·N, D), group after group, and the jet at G·``derivative_points``
        points, group after group (the value only with ``order`` 0, at every point)."""
        groups, n, dim = world.shape

        def repeats(count: int) -> torch.Tensor:
            return torch.full((groups,), count, dtype=torch.long, device=world.device)

        if order == 0:
            flat = world.reshape(-1, dim)
            jet = self.displacement(flat, alpha, 0, repeats(n))
            moved = (flat + jet.value).view(groups, n, dim)
        else:
            head = world[:, :derivative_points].reshape(-1, dim)
            jet = self.displacement(head, alpha, order, repeats(derivative_points))
            parts = [(head + jet.value).view(groups, derivative_points, dim)]
            if derivative_points < n:
                rest = world[:, derivative_points:].reshape(-1, dim)
                u_rest = self.displacement(rest, alpha, 0, repeats(n - derivative_points))
                parts.append((rest + u_rest.value).view(groups, n - derivative_points, dim))
            moved = torch.cat(parts, dim=1)
        return MapJet(self.apply_init(moved.reshape(-1, dim)), jet, self.linear_det)

    def map_world(self, world: World[torch.Tensor], alpha: torch.Tensor,
                  repeats: torch.Tensor | None = None) -> World[torch.Tensor]:
        """φ(x) for world points (B, D) tensor on the device (differentiable)."""
        return self.map_jet(world, alpha, 0, repeats).value

    @torch.no_grad()
    def map_points(self, points_world: World[np.ndarray], alpha: float | Sequence[float],
                   chunk_size: int = 65536) -> World[np.ndarray]:
        """φ(x) for world points (N, D) numpy (mm, LPS), float64 result (mm, LPS)."""
        points_world = np.asarray(points_world, dtype=np.float64)
        a = self.alpha_tensor(alpha)
        model = self.frozen(a)
        out = np.empty_like(points_world)
        for start in range(0, len(points_world), chunk_size):
            p = points_world[start : start + chunk_size]
            x = torch.as_tensor(p, dtype=torch.float32, device=self.device)
            u = model.displacement(x, a).value.double().cpu().numpy()
            out[start : start + chunk_size] = p + u
        return apply_affine(self.init_matrix, out)
