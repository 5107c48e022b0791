"""The prior over α from which each training iteration draws its condition(s)."""

from __future__ import annotations

import torch

from cidir.config import TrainingConfig


def draw_alphas(config: TrainingConfig, groups: int, num_conditions: int, conditioned: bool,
                generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """α of shape (groups, K) in [0, 1].

    Unconditioned models (IDIR, ReLU baselines) and the ``fixed`` prior always use
    ``alpha_fixed``; ``uniform`` draws U[alpha_low, alpha_high] per entry (``stratified``
    sampling: one draw in each of ``groups`` equal strata, per condition), replaced by an
    endpoint with probability ``endpoint_probability`` (as HyperMorph oversamples 0 and 1).
    """
    shape = (groups, num_conditions)
    if not conditioned or config.alpha_prior == "fixed":
        return torch.full(shape, config.alpha_fixed, device=device)
    u = torch.rand(shape, generator=generator, device=device)
    if config.alpha_sampling == "stratified" and groups > 1:
        strata = torch.rand(shape, generator=generator, device=device).argsort(dim=0)
        u = (strata + u) / groups
    alpha = config.alpha_low + (config.alpha_high - config.alpha_low) * u
    if config.endpoint_probability > 0:
        pick = torch.rand(shape, generator=generator, device=device)
        coin = torch.rand(shape, generator=generator, device=device) < 0.5
        ends = torch.where(coin, torch.full_like(alpha, config.alpha_low),
                           torch.full_like(alpha, config.alpha_high))
        alpha = torch.where(pick < config.endpoint_probability, ends, alpha)
    return alpha
