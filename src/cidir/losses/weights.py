"""λ(α): the weight that multiplies a regularizer, as a function of the condition α ∈ [0, 1]."""

from __future__ import annotations

import math

import torch


def regularizer_weight(alpha: torch.Tensor, lambda_min: float, lambda_max: float,
                       mapping: str) -> torch.Tensor:
    """λ(α) elementwise.

    ``log``: λ_min·(λ_max/λ_min)^α (useful weights span decades; the default);
    ``linear``: λ_max·α (the paper's literal mapping); ``constant``: λ_max.
    """
    if mapping == "log":
        return lambda_min * torch.exp(alpha * math.log(lambda_max / lambda_min))
    if mapping == "linear":
        return lambda_max * alpha
    if mapping == "constant":
        return torch.full_like(alpha, lambda_max)
    raise ValueError(f"mapping: expected log, linear or constant, found {mapping!r}")
