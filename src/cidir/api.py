"""The in-memory API: what the ``cidir`` commands do, on images and transforms.

Images in (:class:`cidir.geometry.Image`: array + grid, world mm LPS), dataclasses out;
nothing here writes a file. The commands of :mod:`cidir.runs` are thin wrappers around these
functions: they read the files, call them, and record the results in a run folder.

Example::

    from cidir import api
    from cidir.config import RunConfig

    fixed, moving = api.read_image("inhale.nii.gz"), api.read_image("exhale.nii.gz")
    mask = api.read_mask("inhale_lungs.nii.gz", reference=fixed.grid)
    fit = api.register(fixed, moving, RunConfig(), fixed_mask=mask, init="affine")
    fl = api.read_label_map("inhale_lobes.nii.gz", reference=fixed.grid)
    ml = api.read_label_map("exhale_lobes.nii.gz", reference=moving.grid)
    choice = api.choose_alpha(fit.transform, fl, ml)          # SelectionResult
    numbers = api.evaluate(fit.transform, choice.alpha, fixed_labels=fl, moving_labels=ml)
    field = api.displacement_field(fit.transform, choice.alpha)  # (*size, D) mm, fixed → moving

Every function takes and returns world coordinates (mm, LPS); fields map fixed → moving and
include the initial affine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from cidir.alignment import initial_alignment
from cidir.config import RunConfig, SelectionConfig
from cidir.evaluation import Evaluation, evaluate_transform
from cidir.fields import (
    ConditionedTransform,
    displacement_field,
    jacobian_determinant_map,
    warp_image,
    warp_labels,
)
from cidir.geometry import Grid, Image
from cidir.geometry.frames import World
from cidir.io.images import read_image, read_label_map, read_mask
from cidir.io.landmarks import read_points
from cidir.runtime import resolve_device
from cidir.selection import SelectionResult, search_alpha, search_surface
from cidir.training import FitResult, Trainer, TrainingHook
from cidir.training.warm_start import check_compatible, load_weights

__all__ = [
    "Evaluation",
    "FitResult",
    "SelectionResult",
    "choose_alpha",
    "displacement_field",
    "evaluate",
    "initial_transform",
    "jacobian_determinant_map",
    "load_transform",
    "read_image",
    "read_label_map",
    "read_mask",
    "read_points",
    "register",
    "start_fit",
    "warp_image",
    "warp_labels",
]


def initial_transform(fixed: Image, moving: Image, init: str = "none", *,
                      fixed_mask: Image | None = None, moving_mask: Image | None = None,
                      seed: int = 0) -> np.ndarray:
    """The linear alignment fixed → moving ((D+1)×(D+1), world mm LPS): ``none``,
    ``moments``, ``rigid``, ``affine`` or an ITK transform file
    (:func:`cidir.alignment.initial_alignment`)."""
    return initial_alignment(fixed, moving, init, fixed_mask, moving_mask, seed=seed)


def start_fit(fixed: Image, moving: Image, config: RunConfig | None = None, *,
              fixed_mask: Image | None = None, init_matrix: np.ndarray | None = None,
              device: str | torch.device = "cpu",
              init_model: tuple[ConditionedTransform, RunConfig] | None = None) -> Trainer:
    """A trainer ready to run (for checkpoints and resuming: :class:`cidir.training.Trainer`);
    ``init_matrix`` from :func:`initial_transform`; ``init_model``: (transform, its config)
    of another pair's fit whose network starts this one (a warm start,
    :mod:`cidir.training.warm_start`; InputError when incompatible)."""
    config = config or RunConfig()
    if init_model is not None:
        check_compatible(init_model[0], init_model[1], config, fixed.ndim, "init_model")
    trainer = Trainer(fixed, moving, config, fixed_mask, resolve_device(device), init_matrix)
    if init_model is not None:
        load_weights(trainer.transform, init_model[0])
    return trainer


def register(fixed: Image, moving: Image, config: RunConfig | None = None, *,
             fixed_mask: Image | None = None, moving_mask: Image | None = None,
             init: str = "none", device: str | torch.device = "cpu",
             hooks: Sequence[TrainingHook] = (),
             init_model: tuple[ConditionedTransform, RunConfig] | None = None) -> FitResult:
    """Train one conditioned network for ``moving`` → ``fixed`` over the whole α prior (the
    initial alignment first, seeded by ``training.seed``); the transform works at any α.
    ``init_model``: start from another pair's network (see :func:`start_fit`)."""
    config = config or RunConfig()
    matrix = initial_transform(fixed, moving, init, fixed_mask=fixed_mask,
                               moving_mask=moving_mask, seed=config.training.seed)
    trainer = start_fit(fixed, moving, config, fixed_mask=fixed_mask, init_matrix=matrix,
                        device=device, init_model=init_model)
    return trainer.run(hooks)


def choose_alpha(transform: ConditionedTransform, fixed_labels: Image, moving_labels: Image,
                 selection: SelectionConfig | None = None, *,
                 labels: Sequence[int] | None = None,
                 fixed_points: World[np.ndarray] | None = None,
                 moving_points: World[np.ndarray] | None = None,
                 rule: str = "dice") -> SelectionResult:
    """Score the α grid by the Dice of the warped moving labels (and TRE when points are
    given) and choose one by ``rule`` dice or tre (:mod:`cidir.selection.alpha_search`), or
    by the boundary distance of the same labels, ``rule`` surface
    (:mod:`cidir.selection.surface`); the label-free rule is
    :func:`cidir.selection.lcurve.search_lcurve`."""
    if rule == "surface":
        return search_surface(transform, fixed_labels, moving_labels, selection, labels,
                              fixed_points, moving_points)
    return search_alpha(transform, fixed_labels, moving_labels, selection, labels,
                        fixed_points, moving_points, rule=rule)


def evaluate(transform: ConditionedTransform, alpha: float | Sequence[float], *,
             fixed_points: World[np.ndarray] | None = None,
             moving_points: World[np.ndarray] | None = None,
             moving_grid: Grid | None = None, fixed_labels: Image | None = None,
             moving_labels: Image | None = None, labels: Sequence[int] | None = None,
             mask: np.ndarray | None = None, field: np.ndarray | None = None) -> Evaluation:
    """TRE (snapped to ``moving_grid`` too when given), Dice, folding at α
    (:func:`cidir.evaluation.evaluate_transform`; ``field``: the dense field at α if already
    computed)."""
    return evaluate_transform(transform, alpha, fixed_points=fixed_points,
                              moving_points=moving_points, moving_grid=moving_grid,
                              fixed_labels=fixed_labels, moving_labels=moving_labels,
                              labels=labels, mask=mask, field=field)


def load_transform(run_dir: str, device: str | torch.device = "cpu") -> ConditionedTransform:
    """The trained transform of a run folder (checked against its config.toml)."""
    from cidir.runs.folder import RunFolder

    return RunFolder(run_dir).load_transform(resolve_device(device))
