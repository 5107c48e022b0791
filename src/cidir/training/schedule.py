"""The learning rate as a pure function of the iteration (so that resuming needs no state)."""

from __future__ import annotations

import math

from cidir.config import TrainingConfig


def learning_rate_at(config: TrainingConfig, iteration: int) -> float:
    """The learning rate of the step that follows ``iteration`` completed iterations.

    ``constant``: ``learning_rate``. ``cosine``: linear warm-up from learning_rate /
    warmup_iterations over the first ``warmup_iterations`` steps (at most half the
    iterations: a short fit keeps half its steps for the decay), then a cosine decay to
    ``final_lr_fraction · learning_rate`` at the last step.
    """
    base = config.learning_rate
    if config.lr_schedule == "constant":
        return base
    warmup = min(config.warmup_iterations, config.iterations // 2)
    if iteration < warmup:
        return base * (iteration + 1) / warmup
    span = max(1, config.iterations - 1 - warmup)
    progress = min(1.0, (iteration - warmup) / span)
    low = config.final_lr_fraction * base
    return low + 0.5 * (base - low) * (1.0 + math.cos(math.pi * progress))
