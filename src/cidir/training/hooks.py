"""Hooks called by the training loop: progress bar, loss log, checkpoints, early stop.

A hook implements any of ``on_start(state)``, ``on_step(state)`` and ``on_end(state)``;
``on_step`` returning True asks the loop to stop after this iteration.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cidir.config import RunConfig
    from cidir.fields import ConditionedTransform
    from cidir.training.trainer import Trainer


@dataclass
class TrainingState:
    """What a hook sees: the iteration (1-based once started), its loss parts, the model."""

    iteration: int
    iterations: int
    parts: dict[str, float]
    transform: ConditionedTransform
    config: RunConfig
    elapsed_seconds: float = 0.0
    history: list[dict[str, float]] = field(default_factory=list)


class TrainingHook:
    """Base class: every callback does nothing."""

    def on_start(self, state: TrainingState) -> None:  # noqa: B027
        pass

    def on_step(self, state: TrainingState) -> bool | None:
        return None

    def on_end(self, state: TrainingState) -> None:  # noqa: B027
        pass


log = logging.getLogger(__name__)


def _loss_text(parts: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in parts.items())


class ProgressBar(TrainingHook):
    """Progress on stderr: a tqdm bar showing the loss terms (refreshed every ``every``
    iterations) on a terminal; otherwise (a log file, a pipe) a plain line at every tenth of
    the iterations, so that logs get no carriage-return floods. ``plain`` None: decide by
    ``sys.stderr.isatty()``."""

    def __init__(self, every: int = 10, disable: bool | None = None,
                 plain: bool | None = None) -> None:
        self.every = every
        self.disable = disable
        self.plain = plain
        self._bar = None

    def on_start(self, state: TrainingState) -> None:
        if self.disable:
            return
        if self.plain if self.plain is not None else not sys.stderr.isatty():
            self._bar = _PlainProgress(state.iterations)
            return
        from tqdm.auto import tqdm

        self._bar = tqdm(total=state.iterations, initial=state.iteration, desc="fit", unit="it",
                         dynamic_ncols=True)

    def on_step(self, state: TrainingState) -> None:
        if self._bar is None:
            return
        if isinstance(self._bar, _PlainProgress):
            self._bar.step(state)
        elif state.iteration % self.every == 0 or state.iteration == state.iterations:
            self._bar.set_postfix({k: f"{v:.4g}" for k, v in state.parts.items()}, refresh=False)
            self._bar.update(state.iteration - self._bar.n)

    def on_end(self, state: TrainingState) -> None:
        if self._bar is not None and not isinstance(self._bar, _PlainProgress):
            self._bar.update(state.iteration - self._bar.n)
        self.close()

    def close(self) -> None:
        """Close the bar (its line ends), so that what is printed next starts a new line."""
        if self._bar is not None and not isinstance(self._bar, _PlainProgress):
            self._bar.close()


class _PlainProgress:
    """``fit: 80/800 iterations (10%), 9.1 s, about 82 s left; total -0.91, ...`` on stderr
    at every tenth of the iterations."""

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations
        self.step_size = max(1, iterations // 10)

    def step(self, state: TrainingState) -> None:
        i = state.iteration
        if i % self.step_size and i != self.iterations:
            return
        done = i / self.iterations
        left = state.elapsed_seconds * (1 - done) / done if done else 0.0
        print(f"fit: {i}/{self.iterations} iterations ({100 * done:.0f}%), "
              f"{state.elapsed_seconds:.1f} s, about {left:.0f} s left; "
              f"{_loss_text(state.parts)}", file=sys.stderr, flush=True)


class LogProgress(TrainingHook):
    """The fit's course on the ``cidir`` logger (INFO; fit.log, ``-v``): the start, the
    loss terms every ``every`` iterations and the end, with seconds."""

    def __init__(self, every: int) -> None:
        self.every = max(1, every)

    def on_start(self, state: TrainingState) -> None:
        t = state.config.training
        log.info("training: iterations %d to %d, batch %d points, learning rate %g (%s)",
                 state.iteration + 1, state.iterations, t.batch_size, t.learning_rate,
                 t.lr_schedule)

    def on_step(self, state: TrainingState) -> None:
        if state.iteration % self.every == 0 or state.iteration == state.iterations:
            log.info("iteration %d/%d, %.1f s: %s", state.iteration, state.iterations,
                     state.elapsed_seconds, _loss_text(state.parts))

    def on_end(self, state: TrainingState) -> None:
        log.info("training ended at iteration %d/%d after %.1f s", state.iteration,
                 state.iterations, state.elapsed_seconds)


class Checkpoint(TrainingHook):
    """Saves the trainer's complete state (:mod:`cidir.training.checkpoint`, atomically)
    every ``every`` iterations before the last; ``extra`` goes into its metadata."""

    def __init__(self, path: str | Path, every: int, trainer: Trainer,
                 extra: dict[str, str] | None = None) -> None:
        self.path = Path(path)
        self.every = every
        self.trainer = trainer
        self.extra = extra

    def save(self) -> None:
        from cidir.training.checkpoint import save_checkpoint

        save_checkpoint(self.path, self.trainer.state_dict(), self.extra)

    def on_step(self, state: TrainingState) -> None:
        if self.every and state.iteration % self.every == 0 and \
                state.iteration < state.iterations:
            self.save()


class StopWhen(TrainingHook):
    """Asks the loop to stop after the current iteration once ``flag()`` is true (e.g. a
    signal was received)."""

    def __init__(self, flag: Callable[[], bool]) -> None:
        self.flag = flag

    def on_step(self, state: TrainingState) -> bool:
        return bool(self.flag())


class EarlyStopping(TrainingHook):
    """Stops when the total loss has not improved by ``min_delta`` for ``patience`` steps
    (on a running mean over ``window`` iterations, since the loss is stochastic)."""

    def __init__(self, patience: int = 200, min_delta: float = 1e-4, window: int = 50) -> None:
        self.patience = patience
        self.min_delta = min_delta
        self.window = window
        self._recent: list[float] = []
        self._best = float("inf")
        self._since_best = 0

    def on_step(self, state: TrainingState) -> bool:
        self._recent = (self._recent + [state.parts["total"]])[-self.window :]
        mean = sum(self._recent) / len(self._recent)
        if mean < self._best - self.min_delta:
            self._best = mean
            self._since_best = 0
        else:
            self._since_best += 1
        return len(self._recent) == self.window and self._since_best >= self.patience
