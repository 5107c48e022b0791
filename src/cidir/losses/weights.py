"""λ(α): the weight that multiplies a regularizer, as a function of the condition α ∈ [0, 1].

:data:`MAPPINGS` is the registry of the mappings (the config's choices are built from it).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

#: (α, λ_min, λ_max) → λ(α), elementwise
Mapping = Callable[[torch.Tensor, float, float], torch.Tensor]


def log_weight(alpha: torch.Tensor, lambda_min: float, lambda_max: float) -> torch.Tensor:
    """λ_min·(λ_max/λ_min)^α: useful weights span decades (the default)."""
    return lambda_min * torch.exp(alpha * math.log(lambda_max / lambda_min))


def linear_weight(alpha: torch.Tensor, lambda_min: float, lambda_max: float) -> torch.Tensor:
    """λ_max·α: the paper's literal mapping (λ_min unused)."""
    return lambda_max * alpha


def constant_weight(alpha: torch.Tensor, lambda_min: float, lambda_max: float) -> torch.Tensor:
    """λ_max whatever α (λ_min unused)."""
    return torch.full_like(alpha, lambda_max)


#: The mapping registry: ``objective.regularizers.mapping`` names one of these.
MAPPINGS: dict[str, Mapping] = {"log": log_weight, "linear": linear_weight,
                                "constant": constant_weight}


def regularizer_weight(alpha: torch.Tensor, lambda_min: float, lambda_max: float,
                       mapping: str) -> torch.Tensor:
    """λ(α) elementwise for the mapping named ``mapping`` (see :data:`MAPPINGS`)."""
    if mapping not in MAPPINGS:
        raise ValueError(f"mapping: expected {', '.join(MAPPINGS)}, found {mapping!r}")
    return MAPPINGS[mapping](alpha, lambda_min, lambda_max)
