"""Evaluation: Dice, TRE (continuous and snapped), folding, std of log det J."""

from cidir.evaluation.metrics import (
    dice_per_label,
    folding_percent,
    foreground_labels,
    mean_dice,
    snap_to_grid,
    std_log_jacobian,
    tre,
    tre_summary,
)

__all__ = [
    "dice_per_label",
    "folding_percent",
    "foreground_labels",
    "mean_dice",
    "snap_to_grid",
    "std_log_jacobian",
    "tre",
    "tre_summary",
]
