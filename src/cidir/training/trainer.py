"""The training loop: one network per image pair, over the whole prior of α.

Each iteration draws ``batch_size`` points inside the fixed mask and ``alphas_per_iteration``
values of α from the prior, splits the batch between them, evaluates
S(F(x), M(φ(x))) + Σ λ_k(α) R_k(u)(x) (regularizers on ``regularizer_fraction`` of each
group's points, with derivatives propagated through the network), and takes an Adam step.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from cidir.config import RunConfig
from cidir.errors import InputError
from cidir.fields import ConditionedTransform, ImageSampler
from cidir.geometry import Image
from cidir.losses import LossTerms, Objective
from cidir.models import DeformationModel
from cidir.training.hooks import TrainingHook, TrainingState
from cidir.training.prior import draw_alphas
from cidir.training.sampler import PointSampler


@dataclass
class FitResult:
    transform: ConditionedTransform
    history: list[dict[str, float]]
    seconds: float
    iterations: int


def resolve_device(device: str | torch.device) -> torch.device:
    """The torch device named by the user; a clear error when it is not available."""
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise InputError(f"--device: expected cpu, cuda or cuda:N, found {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {device}: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device: expected cpu, cuda or cuda:N, found {device!r}")
    return dev


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
        self.objective = Objective(config.objective)
        self.generator = torch.Generator(device=self.device).manual_seed(config.training.seed)
        self.points = PointSampler(fixed, fixed_mask, self.device, self.generator)
        self.moving = ImageSampler(moving, self.device)
        self.optimizer = torch.optim.Adam(self.transform.model.parameters(),
                                          lr=config.training.learning_rate)

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
        self.optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        self.optimizer.step()
        return terms

    def run(self, hooks: Sequence[TrainingHook] = ()) -> FitResult:
        """All iterations, calling the hooks; returns the trained transform and loss history."""
        t = self.config.training
        self.transform.model.train()
        state = TrainingState(0, t.iterations, {}, self.transform, self.config)
        for hook in hooks:
            hook.on_start(state)
        start = time.perf_counter()
        for iteration in range(1, t.iterations + 1):
            terms = self.step()
            state.iteration = iteration
            state.parts = terms.parts
            state.elapsed_seconds = time.perf_counter() - start
            if iteration % t.log_every == 0 or iteration == 1 or iteration == t.iterations:
                state.history.append({"iteration": iteration,
                                      "seconds": round(state.elapsed_seconds, 4), **terms.parts})
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
        return FitResult(self.transform, state.history, state.elapsed_seconds, state.iteration)


def fit(fixed: Image, moving: Image, config: RunConfig, fixed_mask: Image | None = None,
        device: str | torch.device = "cpu", hooks: Sequence[TrainingHook] = (),
        init_matrix: np.ndarray | None = None) -> FitResult:
    """Register ``moving`` to ``fixed`` over the whole α prior; see :class:`Trainer`."""
    return Trainer(fixed, moving, config, fixed_mask, device, init_matrix).run(hooks)
