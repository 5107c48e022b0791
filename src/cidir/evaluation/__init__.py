"""Evaluation: Dice, TRE (continuous and snapped), folding, std of log det J; a trained
transform evaluated at one α (:class:`Evaluation`)."""

from cidir.evaluation.at_alpha import Evaluation, evaluate_transform
from cidir.evaluation.metrics import (
    TREStats,
    TRESummary,
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
    "Evaluation",
    "TREStats",
    "TRESummary",
    "dice_per_label",
    "evaluate_transform",
    "folding_percent",
    "foreground_labels",
    "mean_dice",
    "snap_to_grid",
    "std_log_jacobian",
    "tre",
    "tre_summary",
]
