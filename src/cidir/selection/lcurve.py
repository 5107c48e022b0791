"""Choosing α without labels: the corner of the L-curve.

For each α of the grid the trained network is evaluated (no retraining, no labels) on
points of its training region — the fixed mask grown by ``training.mask_margin_mm``, or the
whole fixed image without a mask — drawn once, uniformly without replacement, with
``selection.seed``; the same points serve every α (common random numbers), so the curve is
smooth in α even where its absolute values carry sampling noise:

- S(α): the run's similarity (``objective.similarity``, e.g. −NCC; lower is better) of the
  fixed intensities and the moving image sampled at φ(x; α), on ``selection.sample_points``
  points, by the function the training objective uses;
- R(α): the mean energy of the α-driven regularizer (e.g. bending energy
  Σ‖∂²u/∂x_i∂x_j‖², mm⁻²; the sum of the energies when several terms are α-driven), with
  derivatives in mm from the jets the training uses, on ``selection.folding_points`` of those
  points (folding %, det ∇φ ≤ 0, on the same points).

As α grows R falls by decades and S rises: the curve (S, log R) is an L. Along its steep leg
(small α) smoothness is bought for almost no similarity; along its flat leg (large α)
similarity is lost for little more smoothness. The corner is where the two balance.

Corner ("triangle" / kneedle rule): both coordinates are scaled to [0, 1] over the grid and
the chosen α is the point farthest from the chord that joins the curve's two ends, on the
side of the ideal point (lowest S, lowest log R). Why not the maximum discrete curvature: it
needs second differences of a sampled curve, which amplify the noise of a trained network's
S and R and grow where grid points crowd; the distance to the chord is a zero-order quantity
(noise of ε in the points moves it by at most ε), independent of the α spacing, and it does
not change when either axis is rescaled. When no point lies on the ideal side of the chord
(no L: the prior's λ range is too narrow for this pair) the rule keeps the middle α and the
result carries a ``note``.

Ties: the α whose distance from the chord is within MIN_CORNER_DISTANCE of the corner's —
the rule cannot tell them apart (every α when there is no corner).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch

from cidir.config import ObjectiveConfig, SelectionConfig
from cidir.errors import InputError
from cidir.evaluation.metrics import folding_percent, std_log_jacobian, tre
from cidir.fields import ConditionedTransform, ImageSampler
from cidir.geometry import Image
from cidir.losses import Objective
from cidir.selection.alpha_search import AlphaRow, SelectionResult, checked_grid
from cidir.training.sampler import candidate_voxels

#: distance (in the unit square) below which the curve counts as having no corner
MIN_CORNER_DISTANCE = 0.02


def sample_training_region(fixed: Image, mask: Image | None, margin_mm: float, n: int,
                           seed: int) -> tuple[np.ndarray, int]:
    """Flat voxel indices of the fixed grid: ``n`` drawn without replacement from the
    training region (the mask grown by ``margin_mm``, mm; every voxel without a mask), sorted;
    and the region's size in voxels."""
    if mask is None:
        flat = np.arange(fixed.grid.num_voxels)
    else:
        if not mask.grid.same_as(fixed.grid, atol=1e-3):
            raise InputError(f"fixed mask {mask.source}: grid {mask.grid.describe()} differs "
                             f"from the fixed image's {fixed.grid.describe()}")
        flat = candidate_voxels(fixed.grid, mask.array, margin_mm)
        if len(flat) == 0:
            raise InputError(f"fixed mask {mask.source}: expected some voxels inside, found "
                             "an empty mask")
    region = len(flat)
    if region > n:
        flat = np.sort(np.random.default_rng(seed).choice(flat, n, replace=False))
    return flat, region


def _energy_terms(objective: ObjectiveConfig) -> list[str]:
    names = [t.name for t in objective.regularizers if t.mapping != "constant"]
    if not names:
        raise InputError("rule lcurve: the run has no α-driven regularizer (objective."
                         "regularizers with a log or linear mapping), so α changes nothing "
                         "the L-curve could trade; choose α by --rule dice or tre")
    return names


def lcurve_corner(similarity: Sequence[float], energy: Sequence[float]
                  ) -> tuple[int, np.ndarray]:
    """Index of the corner of the curve (S, log R) ordered by α, and every point's signed
    distance from the chord in the unit square (positive: the ideal side; see the module
    docstring). −1 when no point is farther than MIN_CORNER_DISTANCE on the ideal side."""
    s = np.asarray(similarity, dtype=float)
    r = np.log(np.maximum(np.asarray(energy, dtype=float), 1e-30))
    points = np.stack([_unit(s), _unit(r)], axis=1)
    chord = points[-1] - points[0]
    length = float(np.hypot(*chord))
    if length == 0.0:
        return -1, np.zeros(len(s))
    cross = chord[0] * (points[:, 1] - points[0, 1]) - chord[1] * (points[:, 0] - points[0, 0])
    ideal = chord[0] * (0.0 - points[0, 1]) - chord[1] * (0.0 - points[0, 0])
    distance = cross / length * (1.0 if ideal >= 0 else -1.0)
    best = int(np.argmax(distance))
    return (best if distance[best] > MIN_CORNER_DISTANCE else -1), distance


def _unit(values: np.ndarray) -> np.ndarray:
    span = float(values.max() - values.min())
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


@torch.no_grad()
def _score(transform: ConditionedTransform, moving: ImageSampler, loss: Objective,
           world: torch.Tensor, fixed_values: torch.Tensor, n_derivative: int,
           alpha: float) -> tuple[float, float, np.ndarray]:
    """(S, R, det ∇φ) at α: S on every sampled world point (B, D) mm, R and det ∇φ on the
    first ``n_derivative`` (see the module docstring)."""
    at = transform.alpha_tensor(alpha)
    transform = transform.frozen(at)
    warped = moving(transform.map_world(world, at))
    s = float(loss.similarity(fixed_values.view(1, -1), warped.view(1, -1)).mean())
    jet = transform.map_jet(world[:n_derivative], at, order=loss.derivative_order)
    values = loss.regularizer_values(jet.u.jacobian, jet.u.hessian)
    energy = sum(float(values[name].mean()) for name in _energy_terms(loss.config))
    return s, energy, jet.jacobian_determinant().cpu().numpy()


def search_lcurve(transform: ConditionedTransform, fixed: Image, moving: Image,
                  objective: ObjectiveConfig, config: SelectionConfig | None = None, *,
                  mask: Image | None = None, margin_mm: float = 0.0,
                  fixed_points: np.ndarray | None = None,
                  moving_points: np.ndarray | None = None,
                  alphas: Sequence[float] | None = None) -> SelectionResult:
    """Score every α of the grid by S and R and choose the L-curve's corner (module
    docstring). ``mask``: the fit's fixed mask (grown by ``margin_mm``, mm, as in training);
    points (world mm), when given, add the mean TRE of each α to its row."""
    start = time.perf_counter()
    config = config or SelectionConfig()
    _energy_terms(objective)
    if (fixed_points is None) != (moving_points is None):
        raise InputError("fixed and moving landmark points go together")
    if not fixed.grid.same_as(transform.grid, atol=1e-3):
        raise InputError(f"fixed image {fixed.source}: grid {fixed.grid.describe()} differs "
                         f"from the model's fixed grid {transform.grid.describe()}")
    if transform.num_conditions > 1:
        raise InputError(f"rule lcurve: needs a model conditioned on one hyperparameter; this "
                         f"one is conditioned on {transform.num_conditions} (use the "
                         "rule dice, surface or tre)")
    grid = checked_grid(config, alphas)
    flat, region = sample_training_region(fixed, mask, margin_mm, config.sample_points,
                                          config.seed)
    device = transform.device
    world = torch.as_tensor(fixed.grid.world_points(flat), dtype=torch.float32, device=device)
    values = torch.as_tensor(np.asarray(fixed.array, np.float32).reshape(-1)[flat],
                             device=device)
    n_derivative = min(config.folding_points, len(flat))
    sampler, loss = ImageSampler(moving, device), Objective(objective)
    rows, curve = [], []
    for a in grid:
        s, energy, det = _score(transform, sampler, loss, world, values, n_derivative, a)
        curve.append((s, energy))
        row = AlphaRow(alpha=a, dice=None, dice_se=None, folding_percent=folding_percent(det),
                       similarity=s, energy=energy, std_log_jacobian=std_log_jacobian(det))
        if fixed_points is not None and moving_points is not None:
            row.tre_mm = float(tre(transform.map_points(fixed_points, a), moving_points).mean())
        rows.append(row)
    index, distance = lcurve_corner([c[0] for c in curve], [c[1] for c in curve])
    note = None
    tied = list(range(len(rows)))  # no corner: no α is distinguished
    if index >= 0:
        tied = [i for i, d in enumerate(distance) if d >= distance[index] - MIN_CORNER_DISTANCE]
    else:
        index = len(rows) // 2
        note = ("the L-curve (similarity against log regularizer energy over α) has no "
                f"corner: α = {rows[index].alpha:.3g}, the middle of the grid, was kept; the "
                "λ range of the prior may be too narrow for this pair")
    return SelectionResult(rows, rows[index].alpha, index, "lcurve", [], len(flat), region,
                           len(flat) == region, time.perf_counter() - start, note, tied)
