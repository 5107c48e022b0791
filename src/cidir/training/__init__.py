"""Training: the point sampler, the α prior, the loop and its hooks."""

from cidir.training.hooks import (
    Checkpoint,
    EarlyStopping,
    LogProgress,
    ProgressBar,
    StopWhen,
    TrainingHook,
    TrainingState,
)
from cidir.training.trainer import FitResult, Trainer, build_transform, fit

__all__ = [
    "Checkpoint",
    "EarlyStopping",
    "FitResult",
    "LogProgress",
    "ProgressBar",
    "StopWhen",
    "Trainer",
    "TrainingHook",
    "TrainingState",
    "build_transform",
    "fit",
]
