"""Image similarity over a batch of sampled points (pure functions).

Inputs are intensities (G, N): G groups (one per α drawn in the iteration) of N points.
The result is one loss per group (G,); lower is better.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

#: (fixed (G, N), warped (G, N)) → loss per group (G,)
Similarity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def negative_ncc(fixed: torch.Tensor, warped: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """−NCC over the points of each group (global, not windowed; IDIR's choice). In [−1, 1]."""
    f = fixed - fixed.mean(dim=-1, keepdim=True)
    w = warped - warped.mean(dim=-1, keepdim=True)
    cov = (f * w).mean(dim=-1)
    std = torch.sqrt((f * f).mean(dim=-1) * (w * w).mean(dim=-1) + eps)
    return -cov / std


def mse(fixed: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
    """Mean squared intensity difference of each group (intensity units squared)."""
    return ((fixed - warped) ** 2).mean(dim=-1)


#: The similarity registry: ``objective.similarity`` names one of these (the config's choices
#: are built from it).
SIMILARITIES: dict[str, Similarity] = {"ncc": negative_ncc, "mse": mse}
