"""How much φ depends on α where the selection cannot tell α apart: the α-uncertainty map.

For the α tied with the chosen one (:attr:`cidir.selection.SelectionResult.tied_alphas`:
those whose score is within its standard error of the best), the map holds at each voxel x
of a grid the largest distance between the mapped points φ(x; α_i) and φ(x; α_j) over every
pair of tied α — the diameter of the set of places x could map to, in mm (world, LPS). It
is 0 wherever every tied α agrees (one tied α, or a network that does not depend on α
there), and it is one trained network's own spread: it says nothing of errors shared by
every α (see docs/selection.md for its calibration against a known field).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cidir.fields.dense import _evaluate
from cidir.fields.transform import ConditionedTransform
from cidir.geometry import Grid


def alpha_spread_map(transform: ConditionedTransform, alphas: Sequence[float],
                     grid: Grid | None = None, mask: np.ndarray | None = None,
                     chunk_size: int = 65536) -> np.ndarray:
    """max over pairs i < j of ‖φ(x; α_i) − φ(x; α_j)‖ (mm) at the voxels of ``grid``
    (default: the fixed grid), shape grid.shape, float32; with ``mask`` (grid.shape, nonzero
    inside) only the voxels inside are evaluated, NaN elsewhere. Cost: one evaluation of φ
    per α per voxel, and K(K−1)/2 distances for K α."""
    grid = grid or transform.grid
    if not alphas:
        raise ValueError("alpha_spread_map: expected at least one α")
    if mask is not None and np.shape(mask) != grid.shape:
        raise ValueError(f"mask: expected shape {grid.shape}, found {np.shape(mask)}")
    at_alphas = frozen_at(transform, alphas)
    return _evaluate(grid, transform, chunk_size, 1, np.float32,
                     lambda x: alpha_spread(at_alphas, x), mask)


def frozen_at(transform: ConditionedTransform, alphas: Sequence[float]
              ) -> list[tuple[ConditionedTransform, torch.Tensor]]:
    """(the transform frozen at α, α as a tensor) for each α (see
    :meth:`ConditionedTransform.frozen`): fold once, evaluate many points."""
    tensors = [transform.alpha_tensor(a) for a in alphas]
    return [(transform.frozen(a), a) for a in tensors]


@torch.no_grad()
def alpha_spread(at_alphas: Sequence[tuple[ConditionedTransform, torch.Tensor]],
                 world: torch.Tensor) -> torch.Tensor:
    """max over pairs i < j of ‖φ(x; α_i) − φ(x; α_j)‖ (mm) at world points (B, D) on the
    device; ``at_alphas`` from :func:`frozen_at`."""
    mapped = [t.map_world(world, a) for t, a in at_alphas]
    out = torch.zeros(len(world), dtype=world.dtype, device=world.device)
    for i in range(len(mapped)):
        for j in range(i + 1, len(mapped)):
            out = torch.maximum(out, (mapped[i] - mapped[j]).norm(dim=1))
    return out
