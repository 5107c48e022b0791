"""A trained transform evaluated at one α: TRE, Dice, folding (what ``cidir evaluate`` writes).

Points are in world mm (LPS): fixed points are mapped by φ(·; α) into the moving image and
compared with their moving partners, continuous and snapped to the moving grid. Labels:
the moving labels are warped onto the fixed grid (nearest) and compared with the fixed
labels; Dice before registration resamples them where they lie in world space (identity
map), so it is defined when the two images have different grids too. Folding and std log
det J are taken over the fixed grid, inside ``mask`` when given (only the voxels inside are
evaluated).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cidir.evaluation.metrics import (
    TRESummary,
    dice_per_label,
    folding_percent,
    foreground_labels,
    mean_dice,
    std_log_jacobian,
    tre_summary,
)
from cidir.fields import (
    ConditionedTransform,
    jacobian_determinant_map,
    resample_with_field,
    warp_labels,
)
from cidir.geometry import Grid, Image
from cidir.geometry.frames import World


@dataclass(frozen=True)
class Evaluation:
    """The numbers of one transform at one α (TRE in mm, folding in % of voxels)."""

    alpha: float | Sequence[float]
    tre_before: TRESummary | None = None
    tre_after: TRESummary | None = None
    dice: float | None = None
    dice_per_label: dict[int, float] = field(default_factory=dict)
    dice_before: float | None = None  # moving labels where they lie in world space
    folding_percent: float = math.nan
    std_log_jacobian: float = math.nan
    jacobian_region: str = "fixed grid"  # or "mask"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (label keys as strings); absent measurements are left out."""
        out: dict[str, Any] = {"alpha": self.alpha}
        if self.tre_before is not None and self.tre_after is not None:
            out["tre_before"] = self.tre_before.to_dict()
            out["tre_after"] = self.tre_after.to_dict()
        if self.dice is not None:
            out["dice"] = self.dice
            out["dice_per_label"] = {str(k): v for k, v in self.dice_per_label.items()}
            if self.dice_before is not None:
                out["dice_before"] = self.dice_before
        out["folding_percent"] = self.folding_percent
        out["std_log_jacobian"] = self.std_log_jacobian
        out["jacobian_region"] = self.jacobian_region
        return out


def evaluate_transform(transform: ConditionedTransform, alpha: float | Sequence[float], *,
                       fixed_points: World[np.ndarray] | None = None,
                       moving_points: World[np.ndarray] | None = None,
                       moving_grid: Grid | None = None,
                       fixed_labels: Image | None = None, moving_labels: Image | None = None,
                       labels: Sequence[int] | None = None,
                       mask: np.ndarray | None = None,
                       field: np.ndarray | None = None) -> Evaluation:
    """TRE (continuous, and snapped to ``moving_grid`` when given), Dice per label (over
    ``labels``, default: the foreground labels of both maps), folding and std of log det J
    (inside ``mask``, else the whole fixed grid) at α. ``field``: φ(x) − x at α on the fixed
    grid, already computed (:func:`~cidir.fields.displacement_field`), to warp the labels
    without evaluating the network again."""
    expected = transform.grid.shape + (transform.ndim,)
    if field is not None and np.shape(field) != expected:
        raise ValueError(f"field: expected shape {expected} (the fixed grid's), found "
                         f"{np.shape(field)}")
    tre_before = tre_after = None
    if fixed_points is not None and moving_points is not None:
        tre_before = tre_summary(fixed_points, moving_points, moving_grid)
        tre_after = tre_summary(transform.map_points(fixed_points, alpha), moving_points,
                                moving_grid)
    dice = dice_before = None
    per_label: dict[int, float] = {}
    if fixed_labels is not None and moving_labels is not None:
        chosen = list(labels) if labels is not None else foreground_labels(
            fixed_labels.array, moving_labels.array)
        warped = (warp_labels(transform, moving_labels, alpha) if field is None else
                  resample_with_field(moving_labels, field, transform.grid, labels=True,
                                      device=transform.device))
        per_label = dice_per_label(fixed_labels.array, warped.array, chosen)
        dice = mean_dice(per_label)
        dice_before = mean_dice(dice_per_label(
            fixed_labels.array, _unmoved_labels(moving_labels, fixed_labels.grid,
                                                transform.device), chosen))
    det = jacobian_determinant_map(transform, alpha, mask=mask)
    return Evaluation(alpha, tre_before, tre_after, dice, per_label, dice_before,
                      folding_percent(det, mask), std_log_jacobian(det, mask),
                      "mask" if mask is not None else "fixed grid")


def _unmoved_labels(labels: Image, grid: Grid, device: torch.device) -> np.ndarray:
    """``labels`` on ``grid`` where they lie in world space (identity map, nearest label):
    the overlap before registration, also when the two images have different grids."""
    if labels.grid.same_as(grid):
        return labels.array
    zero = np.zeros(grid.shape + (grid.ndim,), np.float32)
    return resample_with_field(labels, zero, grid, labels=True, device=device).array
