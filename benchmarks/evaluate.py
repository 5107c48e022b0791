"""Metrics of one method on one pair, from its displacement field in the common convention.

Every method is judged by the same code on the same field (fixed grid, mm, fixed → moving,
initial affine included; see :mod:`benchmarks.fields`):

- TRE (mm): φ(p_fixed) vs p_moving, continuous and snapped (both rounded to the moving grid);
- Dice: moving label maps warped with nearest neighbour onto the fixed grid, mean over the
  listed labels (background excluded), for the selection labels and the evaluation labels;
- folding: % of det ∇φ ≤ 0 (finite differences, SimpleITK) inside the pair's fold mask,
  std of log det;
- field error (mm): mean ‖u − u_true‖ inside the fold mask when a ground truth exists.
"""

from __future__ import annotations

import numpy as np

from benchmarks.fields import jacobian_determinant, map_points_with_field, warp_labels_with_field
from benchmarks.pairs import PairData
from cidir.evaluation.metrics import (
    dice_per_label,
    folding_percent,
    mean_dice,
    std_log_jacobian,
    tre_summary,
)


def dice_of_field(pair: PairData, field: np.ndarray, which: str = "eval") -> float:
    """Mean Dice of the ``which`` (``sel`` or ``eval``) labels warped by ``field``."""
    fixed = getattr(pair, f"fixed_{which}")
    moving = getattr(pair, f"moving_{which}")
    labels = getattr(pair, f"{which}_labels")
    warped = warp_labels_with_field(moving, field, pair.fixed.grid)
    return mean_dice(dice_per_label(fixed.array, warped, labels))


def evaluate_field(pair: PairData, field: np.ndarray) -> dict:
    """All metrics of ``field`` on ``pair`` (see the module docstring)."""
    grid = pair.fixed.grid
    out: dict = {}
    if pair.fixed_points is not None:
        mapped = map_points_with_field(pair.fixed_points, field, grid)
        s = tre_summary(mapped, pair.moving_points, pair.moving.grid)
        assert s.snapped is not None
        out["tre_mm"] = s.continuous.mean
        out["tre_sd_mm"] = s.continuous.sd
        out["tre_snapped_mm"] = s.snapped.mean
        out["tre_per_axis_mm"] = s.continuous.per_axis_mean_abs
    out["dice_sel"] = dice_of_field(pair, field, "sel")
    warped = warp_labels_with_field(pair.moving_eval, field, grid)
    per_label = dice_per_label(pair.fixed_eval.array, warped, pair.eval_labels)
    out["dice_eval"] = mean_dice(per_label)
    out["dice_eval_per_label"] = {str(k): v for k, v in per_label.items()}
    det = jacobian_determinant(field, grid)
    mask = None if pair.fold_mask is None else pair.fold_mask.array > 0
    out["folding_percent"] = folding_percent(det, mask)
    out["std_log_jacobian"] = std_log_jacobian(det, mask)
    if pair.gt_field is not None:
        err = np.linalg.norm(field - pair.gt_field, axis=-1)
        out["field_error_mm"] = float(err[mask].mean() if mask is not None else err.mean())
    return out


def before_registration(pair: PairData) -> dict:
    """TRE and field error of the identity (no registration), for context (mm)."""
    out: dict = {}
    if pair.fixed_points is not None:
        s = tre_summary(pair.fixed_points, pair.moving_points, pair.moving.grid)
        assert s.snapped is not None
        out["tre_mm"] = s.continuous.mean
        out["tre_snapped_mm"] = s.snapped.mean
    if pair.gt_field is not None:
        mask = None if pair.fold_mask is None else pair.fold_mask.array > 0
        err = np.linalg.norm(pair.gt_field, axis=-1)
        out["field_error_mm"] = float(err[mask].mean() if mask is not None else err.mean())
    return out
