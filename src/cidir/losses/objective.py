"""The training objective: loss = S(F(x), M(φ(x))) + Σ_k λ_k(α)·R_k(u)(x).

The similarity is computed per α group (each iteration may split its batch between several
α draws); each regularizer is averaged over the points where derivatives were evaluated,
weighted by its λ_k(α) of that point's group.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from cidir.losses.regularizers import REGULARIZERS
from cidir.losses.similarity import SIMILARITIES, Similarity, negative_mi
from cidir.losses.weights import regularizer_weight

if TYPE_CHECKING:  # config imports the registries of this package: no import at run time
    from cidir.config import ObjectiveConfig


@dataclass
class LossTerms:
    """The total loss (differentiable) and its parts as floats (for logging)."""

    total: torch.Tensor
    parts: dict[str, float]


def similarity_of(config: ObjectiveConfig) -> Similarity:
    """The configured similarity function (with its histogram bins for ``mi``)."""
    if config.similarity == "mi":
        return functools.partial(negative_mi, bins=config.mi_bins)
    return SIMILARITIES[config.similarity]


class Objective:
    """Assembles similarity and weighted regularizers from an :class:`ObjectiveConfig`."""

    def __init__(self, config: ObjectiveConfig,
                 scales: tuple[float, ...] | None = None) -> None:
        self.config = config  # validated at construction
        self.similarity = similarity_of(config)
        #: per regularizer term, the factor its λ(α) is multiplied by (the pair's λ_b once
        #: calibrated; 1 otherwise)
        self.scales = scales or tuple(1.0 for _ in config.regularizers)
        if len(self.scales) != len(config.regularizers):
            raise ValueError(f"expected {len(config.regularizers)} regularizer scales, found "
                             f"{len(self.scales)}")

    @property
    def derivative_order(self) -> int:
        return self.config.derivative_order

    def regularizer_values(self, grad_u: torch.Tensor | None,
                           hess_u: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Per-point value (B,) of every configured regularizer (derivatives in mm)."""
        return {term.name: REGULARIZERS[term.name].evaluate(grad_u, hess_u, self.config)
                for term in self.config.regularizers}

    def weights(self, alpha: torch.Tensor) -> torch.Tensor:
        """λ_k(α) (scaled) for α of shape (G, K): (G, number of regularizers)."""
        cols = [
            scale * regularizer_weight(alpha[:, t.alpha_index], t.lambda_min, t.lambda_max,
                                       t.mapping)
            for t, scale in zip(self.config.regularizers, self.scales, strict=True)
        ]
        if not cols:
            return alpha.new_zeros(alpha.shape[0], 0)
        return torch.stack(cols, dim=1)

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor, alpha: torch.Tensor,
                 grad_u: torch.Tensor | None = None,
                 hess_u: torch.Tensor | None = None) -> LossTerms:
        """fixed, warped: (G, N) intensities; alpha: (G, K); grad_u (G·M, D, D) and hess_u
        (G·M, D, P): derivatives at M points of each group, group after group."""
        similarity = self.similarity(fixed, warped).mean()
        total = similarity
        parts = {"similarity": float(similarity.detach())}
        if self.config.regularizers:
            groups = alpha.shape[0]
            lambdas = self.weights(alpha)  # (G, T)
            values = self.regularizer_values(grad_u, hess_u)
            for k, term in enumerate(self.config.regularizers):
                per_group = values[term.name].view(groups, -1).mean(dim=1)  # (G,)
                total = total + (lambdas[:, k] * per_group).mean()
                parts[term.name] = float(per_group.detach().mean())
        parts["total"] = float(total.detach())
        return LossTerms(total, parts)
