"""Losses: image similarity, regularizers (from exact derivatives in mm), λ(α), the objective."""

from cidir.losses.objective import LossTerms, Objective

__all__ = ["LossTerms", "Objective"]
