"""The training loop: one network per image pair, over the whole prior of α.

Each iteration draws ``batch_size`` points inside the fixed mask and ``alphas_per_iteration``
values of α from the prior, splits the batch between them, evaluates
S(F(x), M(φ(x))) + Σ λ_k(α) R_k(u)(x) (regularizers on ``regularizer_fraction`` of each
group's points, with derivatives propagated through the network), and takes an Adam step.

Resuming: :meth:`Trainer.state_dict` holds everything that changes during training (the
model, Adam's state, the Generator that draws points and α, the iterations completed and the
loss history); :meth:`Trainer.load_state_dict` restores it and :meth:`Trainer.run` continues
from there, giving the same final model as an uninterrupted run. Anything else that varies
over training (the learning-rate schedule of :mod:`cidir.training.schedule`) must be a pure
function of ``Trainer.iteration`` (iterations completed before the current step) so that this
state stays complete. With ``objective.calibration = "pilot"`` the first :meth:`Trainer.run`
fits the pilot of :mod:`cidir.training.calibration`; its result (the λ scales) is part of the
state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cidir.config import RunConfig
from cidir.errors import InputError
from cidir.fields import ConditionedTransform, ImageSampler
from cidir.geometry import Image
from cidir.losses import LossTerms, Objective
from cidir.models import DeformationModel
from cidir.runtime import resolve_device
from cidir.training.calibration import measure_scales, pilot_config
from cidir.training.hooks import TrainingHook, TrainingState
from cidir.training.prior import draw_alphas
from cidir.training.sampler import PointSampler
from cidir.training.schedule import learning_rate_at

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """A trained transform (φ over the whole α prior, world mm) and how it was trained."""

    transform: ConditionedTransform
    history: list[dict[str, float]]  # the loss terms every training.log_every iterations
    seconds: float  # training time, the calibration pilot included
    iterations: int
    calibration: dict[str, Any] | None = None  # the pilot's λ scales (objective.calibration)


def build_transform(config: RunConfig, fixed: Image, device: torch.device,
                    init_matrix: np.ndarray | None = None) -> ConditionedTransform:
    """A freshly initialized model bound to the fixed grid (seeded by training.seed)."""
    torch.manual_seed(config.training.seed)
    model = DeformationModel(config.model, fixed.ndim, config.num_conditions)
    return ConditionedTransform(model.to(device), fixed.grid, init_matrix)


class Trainer:
    """Optimizes a :class:`ConditionedTransform` for one image pair."""

    def __init__(self, fixed: Image, moving: Image, config: RunConfig,
                 fixed_mask: Image | None = None, device: str | torch.device = "cpu",
                 init_matrix: np.ndarray | None = None,
                 transform: ConditionedTransform | None = None) -> None:
        if fixed.ndim != moving.ndim:
            raise InputError(f"fixed image {fixed.source} is {fixed.ndim}D but moving image "
                             f"{moving.source} is {moving.ndim}D")
        self.config = config
        self.device = resolve_device(device)
        self.transform = transform or build_transform(config, fixed, self.device, init_matrix)
        self._pair = (fixed, moving, fixed_mask)  # for the calibration pilot
        self.objective = Objective(config.objective)
        #: the pilot's measurement (None until calibrated, and without calibration)
        self.calibration: dict[str, Any] | None = None
        self.generator = torch.Generator(device=self.device).manual_seed(config.training.seed)
        self.points = PointSampler(fixed, fixed_mask, self.device, self.generator,
                                   config.training.mask_margin_mm)
        self.moving = ImageSampler(moving, self.device)
        self.optimizer = torch.optim.Adam(self.transform.model.parameters(),
                                          lr=config.training.learning_rate)
        self.iteration = 0  # iterations completed
        self.history: list[dict[str, float]] = []  # loss rows every training.log_every
        self.elapsed_seconds = 0.0  # training time so far, over every session

    def state_dict(self) -> dict[str, Any]:
        """The training state: ``model``, ``optimizer``, ``generator`` (uint8 tensor),
        ``iteration``, ``elapsed_seconds``, ``history`` (see :mod:`cidir.training.checkpoint`
        for writing it to disk)."""
        return {"model": self.transform.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "iteration": self.iteration,
                "elapsed_seconds": self.elapsed_seconds,
                "history": [dict(row) for row in self.history],
                "calibration": self.calibration}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; :meth:`run` then continues from its iteration."""
        iteration = int(state["iteration"])
        if not 0 <= iteration <= self.config.training.iterations:
            raise InputError(f"checkpoint: iteration {iteration} is outside the run's "
                             f"0..{self.config.training.iterations}")
        try:
            self.transform.model.load_state_dict(state["model"], strict=True)
            self.optimizer.load_state_dict(state["optimizer"])
            self.generator.set_state(state["generator"])
        except (RuntimeError, KeyError, ValueError, TypeError) as exc:
            raise InputError(f"checkpoint: does not fit this run's model or optimizer "
                             f"({str(exc).splitlines()[0]})") from None
        self.iteration = iteration
        self.elapsed_seconds = float(state["elapsed_seconds"])
        self.history = [dict(row) for row in state["history"]]
        if state.get("calibration"):
            self._set_calibration(state["calibration"])

    def _set_calibration(self, record: dict[str, Any]) -> None:
        self.calibration = record
        self.objective = Objective(self.config.objective, tuple(record["scales"]))

    def calibrate(self) -> dict[str, Any]:
        """Fit the pilot (see :mod:`cidir.training.calibration`) and scale the λ ranges by
        its λ_b; returns the record (also kept in :attr:`calibration` and the state)."""
        fixed, moving, mask = self._pair
        pilot = Trainer(fixed, moving, pilot_config(self.config), mask, self.device,
                        self.transform.init_matrix)
        pilot.run()
        scales, record = measure_scales(pilot, self.objective)
        record["scales"] = list(scales)
        record["seconds"] = round(pilot.elapsed_seconds, 3)
        self._set_calibration(record)
        log.info("calibration: pilot of %d iterations in %.1f s, similarity %.4g → %.4g; %s",
                 pilot.iteration, record["seconds"], record["similarity_identity"],
                 record["similarity_pilot"], ", ".join(
                     f"{name} λ_b = {t['lambda_b']:.4g}" + (" (fallback)" if t["fallback"]
                                                            else "")
                     for name, t in record["terms"].items()) or "no α-driven term")
        return record

    def step(self) -> LossTerms:
        """One iteration: sample, evaluate the objective, Adam step."""
        t = self.config.training
        groups = t.alphas_per_iteration
        per_group = t.batch_size // groups
        n_reg = max(1, round(per_group * self.config.objective.regularizer_fraction))
        order = self.objective.derivative_order
        model = self.transform.model
        alpha = draw_alphas(t, groups, model.num_conditions, model.conditioned, self.generator,
                            self.device)
        world, fixed_values = self.points.sample(groups * per_group)
        world = world.view(groups, per_group, -1)
        fixed_values = fixed_values.view(groups, per_group)
        phi = self.transform.map_jet_groups(world, alpha, order, derivative_points=n_reg)
        warped = self.moving(phi.value).view(groups, per_group)
        grad_u, hess_u = phi.u.jacobian, phi.u.hessian
        terms = self.objective(fixed_values, warped, alpha, grad_u, hess_u)
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(t, self.iteration)
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        return terms

    def run(self, hooks: Sequence[TrainingHook] = ()) -> FitResult:
        """The remaining iterations (all of them unless a state was loaded), calling the
        hooks; returns the trained transform and the loss history."""
        t = self.config.training
        if self.config.objective.calibration == "pilot" and self.calibration is None:
            self.elapsed_seconds += float(self.calibrate()["seconds"])
        self.transform.model.train()
        state = TrainingState(self.iteration, t.iterations, {}, self.transform, self.config,
                              self.elapsed_seconds, self.history)
        for hook in hooks:
            hook.on_start(state)
        start = time.perf_counter() - self.elapsed_seconds
        while self.iteration < t.iterations:
            terms = self.step()
            self.iteration = iteration = self.iteration + 1
            self.elapsed_seconds = time.perf_counter() - start
            state.iteration = iteration
            state.parts = terms.parts
            state.elapsed_seconds = self.elapsed_seconds
            if iteration % t.log_every == 0 or iteration == 1 or iteration == t.iterations:
                self.history.append({"iteration": iteration,
                                     "seconds": round(self.elapsed_seconds, 4), **terms.parts})
            if not np.isfinite(terms.parts["total"]):
                raise RuntimeError(f"training diverged at iteration {iteration}: loss "
                                   f"{terms.parts}; lower training.learning_rate")
            stop = False
            for hook in hooks:
                stop = bool(hook.on_step(state)) or stop
            if stop:
                break
        self.transform.model.eval()
        for hook in hooks:
            hook.on_end(state)
        return FitResult(self.transform, self.history, self.elapsed_seconds, self.iteration,
                         self.calibration)


def fit(fixed: Image, moving: Image, config: RunConfig, fixed_mask: Image | None = None,
        device: str | torch.device = "cpu", hooks: Sequence[TrainingHook] = (),
        init_matrix: np.ndarray | None = None) -> FitResult:
    """Register ``moving`` to ``fixed`` over the whole α prior; see :class:`Trainer`."""
    return Trainer(fixed, moving, config, fixed_mask, device, init_matrix).run(hooks)
