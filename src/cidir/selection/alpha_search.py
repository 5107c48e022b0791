"""Choosing α at inference: a grid search over α, scored by the Dice of warped labels.

For each α of the grid the trained network is evaluated — no retraining. Dice is estimated on
``sample_points`` voxels drawn once, uniformly and without replacement, from the *region*:
fixed-grid voxels within ``region_margin_mm`` of the fixed labels (where warped labels can
be). The same voxels serve every α (common random numbers), so differences between α are
measured far more precisely than the absolute Dice. When the region has no more voxels than
``sample_points`` every voxel is used and the Dice is exact.

Folding (% det ∇φ ≤ 0) is measured on a random subset of ``folding_points`` of those voxels
(it needs derivatives: about 4× the cost of a plain evaluation).

Error bound: Dice per label is a ratio estimator D = Σa / Σb (a = 2·1[F∧W], b = 1[F] + 1[W]
over sampled voxels); by the delta method each voxel has an influence (a − D·b) / mean(b) on
it, and the mean Dice the average of those over labels. ``dice_se`` = sqrt(Var(influence) / n)
(finite-population corrected) is the standard error of the mean Dice; ``dice_gap_se``, the
same for the difference of influences, is the standard error of the Dice *difference*
between an α and the best one — much smaller, because the same voxels serve every α.

Choice: the α with the best mean Dice; α whose Dice is within the tie tolerance of the best
(``tie_tolerance``, or ``dice_gap_se`` when that is 0) count as ties, and ties go to the
smoother (largest) α. With ``rule="tre"`` the lowest mean TRE wins instead; the label-free
rule ``lcurve`` is in :mod:`cidir.selection.lcurve`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from scipy import ndimage

from cidir.config import RULES, SelectionConfig
from cidir.errors import InputError
from cidir.evaluation.metrics import (
    folding_percent,
    foreground_labels,
    mean_dice,
    std_log_jacobian,
    tre,
)
from cidir.fields import ConditionedTransform, LabelSampler
from cidir.geometry import Image
from cidir.selection.alpha_space import (
    Alpha,
    alpha_grid,
    check_values,
    components,
    explore,
    format_alpha,
    smoothness,
)


@dataclass
class AlphaRow:
    """Scores of one α: mean Dice (± standard error), per-label Dice, folding % and std of
    log det ∇φ (on the sampled folding points), TRE (mm); for the L-curve rule the
    similarity S and regularizer energy R instead of Dice (None)."""

    alpha: Alpha  # a float; a tuple for a model conditioned on several hyperparameters
    dice: float | None
    dice_se: float | None
    folding_percent: float
    dice_gap_se: float = 0.0  # standard error of (best Dice − this Dice), same voxels
    dice_per_label: dict[int, float] = field(default_factory=dict)
    tre_mm: float | None = None
    similarity: float | None = None  # the run's similarity S (lower is better); lcurve
    energy: float | None = None  # mean α-driven regularizer energy R (its units); lcurve
    std_log_jacobian: float | None = None  # std of log det ∇φ where det > 0
    surface_mm: float | None = None  # mean boundary error (mm); rule surface


@dataclass
class SelectionResult:
    rows: list[AlphaRow]
    alpha: Alpha
    index: int
    rule: str  # what chose α: one of cidir.config.RULES
    labels: list[int]
    sample_points: int
    region_voxels: int
    exact: bool
    seconds: float
    note: str | None = None  # a rule's own warning (the L-curve without a corner)
    tied: list[int] = field(default_factory=list)  # rows statistically tied with the choice

    @property
    def tied_alphas(self) -> list[Alpha]:
        """The α tied with the chosen one (the chosen α included): where the rule cannot
        tell them apart — the set :func:`cidir.fields.alpha_spread_map` measures."""
        return [self.rows[i].alpha for i in (self.tied or [self.index])]

    @property
    def chosen(self) -> AlphaRow:
        return self.rows[self.index]

    @property
    def warning(self) -> str | None:
        """A note when the choice sits at the least-regularized end of the prior (α = 0 on
        some axis, strictly best: ties already go to larger α), where the Dice may still rise
        for a smaller weight than the prior offers; None otherwise."""
        if self.rule != "dice":
            return self.note
        low = [k for k, v in enumerate(components(self.alpha)) if v == 0.0]
        others = [float(r.dice or 0.0) for r in self.rows
                  if all(components(r.alpha)[k] != 0.0 for k in low)]
        if not low or not others:
            return None
        at = ("α" if len(components(self.alpha)) == 1
              else " and ".join(f"α{k + 1}" for k in low))
        where = ("" if at == "α" else f" at α = {format_alpha(self.alpha)}")
        rival = "the next best α" if at == "α" else f"the best α with {at} > 0"
        return (f"{at} = 0 (the smallest weight of the prior) is best by Dice "
                f"({self.chosen.dice:.4f}{where} vs {max(others):.4f} for {rival}): the prior "
                "may be too stiff for this pair; a smaller lambda_min (--regularizer "
                "NAME:LMIN:LMAX) and a refit may align it better")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["warning"] = self.warning
        out["dice"] = self.chosen.dice
        out["dice_se"] = self.chosen.dice_se
        out["folding_percent"] = self.chosen.folding_percent
        out["tre_mm"] = self.chosen.tre_mm
        out["similarity"] = self.chosen.similarity
        out["energy"] = self.chosen.energy
        out["surface_mm"] = self.chosen.surface_mm
        out["tied_alphas"] = self.tied_alphas
        return out


#: label boxes larger than this (voxels) get their margin on a grid twice as coarse
COARSE_ABOVE = 2_000_000


def sample_region(fixed_labels: Image, labels: Sequence[int], margin_mm: float, n: int,
                  seed: int) -> tuple[np.ndarray, int]:
    """Flat voxel indices drawn from the labels' region (within ``margin_mm``), and its size."""
    region = labels_region(fixed_labels, labels, margin_mm)
    flat = np.flatnonzero(region.ravel())
    if len(flat) > n:
        flat = np.sort(np.random.default_rng(seed).choice(flat, n, replace=False))
    return flat, int(region.sum())


def labels_region(fixed_labels: Image, labels: Sequence[int], margin_mm: float) -> np.ndarray:
    """Boolean array (the label map's shape): voxels within ``margin_mm`` (mm) of the labels.
    The distance transform runs on the labels' bounding box grown by the margin only, and on
    a grid twice as coarse when that box has more than COARSE_ABOVE voxels (the margin is
    then exact to within one coarse voxel; the labels themselves are always in)."""
    foreground = np.isin(fixed_labels.array, labels)
    if margin_mm <= 0 or not foreground.any():
        return foreground
    spacing = np.asarray(fixed_labels.grid.spacing_zyx, float)
    grow = np.ceil(margin_mm / spacing).astype(int) + 2
    where = np.nonzero(foreground)
    box = tuple(slice(max(int(w.min()) - g, 0), int(w.max()) + g + 1)
                for w, g in zip(where, grow, strict=True))
    crop = foreground[box]
    factor = 2 if crop.size > COARSE_ABOVE else 1
    if factor > 1:
        padded = np.pad(crop, [(0, (-n) % factor) for n in crop.shape])
        blocks = padded.reshape([v for n in padded.shape for v in (n // factor, factor)])
        coarse = blocks.any(axis=tuple(range(1, 2 * crop.ndim, 2)))
        near = ndimage.distance_transform_edt(~coarse, sampling=spacing * factor) <= margin_mm
        for axis in range(crop.ndim):
            near = near.repeat(factor, axis=axis)
        near = near[tuple(slice(0, n) for n in crop.shape)] | crop
    else:
        near = ndimage.distance_transform_edt(~crop, sampling=spacing) <= margin_mm
    region = np.zeros_like(foreground)
    region[box] = near
    return region


def _dice_with_influence(fixed: np.ndarray, warped: np.ndarray, labels: Sequence[int]
                         ) -> tuple[dict[int, float], np.ndarray]:
    """Dice per label and, per sampled voxel, its influence on the mean Dice.

    For label l, D = Σa / Σb with a = 2·1[F∧W], b = 1[F] + 1[W]; the estimator's linearization
    gives the influence (a − D·b) / mean(b) of each voxel. The mean-Dice influence is their
    average over the defined labels: its variance / n is the variance of the mean Dice, and
    the variance of a difference of two influences that of a Dice *difference* between two α
    (the same voxels serve every α)."""
    dice: dict[int, float] = {}
    influence = np.zeros(len(fixed))
    defined = 0
    for label in labels:
        f = fixed == label
        w = warped == label
        a = 2.0 * (f & w)
        b = f.astype(float) + w
        mean_b = b.mean()
        if mean_b == 0:
            dice[label] = float("nan")
            continue
        d = a.mean() / mean_b
        dice[label] = float(d)
        influence += (a - d * b) / mean_b
        defined += 1
    return dice, influence / max(defined, 1)


def _standard_error(influence: np.ndarray, fpc: float) -> float:
    n = len(influence)
    return float(np.sqrt(fpc * influence.var(ddof=1) / n)) if n > 1 else 0.0


def _check_inputs(transform: ConditionedTransform, fixed_labels: Image, moving_labels: Image,
                  labels: Sequence[int] | None, fixed_points: np.ndarray | None,
                  moving_points: np.ndarray | None, rule: str) -> list[int]:
    """The labels to score; InputError for anything unusable."""
    if rule not in ("dice", "tre"):
        raise InputError(f"rule: expected dice or tre for a search by labels, found {rule!r}"
                         f" (all rules: {', '.join(RULES)})")
    if rule == "tre" and fixed_points is None:
        raise InputError("rule tre needs fixed and moving landmark points")
    if (fixed_points is None) != (moving_points is None):
        raise InputError("fixed and moving landmark points go together")
    return checked_labels(transform, fixed_labels, moving_labels, labels)


def checked_labels(transform: ConditionedTransform, fixed_labels: Image, moving_labels: Image,
                   labels: Sequence[int] | None) -> list[int]:
    """The labels to score (default: the foreground labels both maps share); InputError
    when the fixed labels are off the model's grid or no label is left."""
    if not fixed_labels.grid.same_as(transform.grid, atol=1e-3):
        raise InputError(f"fixed labels {fixed_labels.source}: grid {fixed_labels.grid.describe()}"
                         f" differs from the model's fixed grid {transform.grid.describe()}")
    if labels is None:
        labels = foreground_labels(fixed_labels.array, moving_labels.array)
    chosen = [int(v) for v in labels]
    if not chosen:
        raise InputError(f"labels {fixed_labels.source} and {moving_labels.source}: no "
                         "foreground label (> 0) in common")
    return chosen


def fold_subset(count: int, config: SelectionConfig, device: torch.device) -> torch.Tensor:
    """Indices of the sampled points where det ∇φ is evaluated: the first
    ``config.folding_points`` of a permutation seeded by ``config.seed + 1``."""
    order = np.random.default_rng(config.seed + 1).permutation(count)
    return torch.as_tensor(order[:min(config.folding_points, count)], device=device)


def checked_grid(config: SelectionConfig, alphas: Sequence[float] | None) -> list[float]:
    """The α grid (config.num_alphas, or ``alphas``); InputError for α outside [0, 1]."""
    grid = alpha_grid(config.num_alphas) if alphas is None else [float(a) for a in alphas]
    check_values(grid, "alphas")
    return grid


class _LabelScorer:
    """Scores α points by the Dice of the sampled voxels (and TRE when points are given),
    keeping every row, its per-voxel Dice influence and its per-landmark errors."""

    def __init__(self, transform: ConditionedTransform, fixed_labels: Image,
                 moving_labels: Image, config: SelectionConfig, labels: list[int],
                 fixed_points: np.ndarray | None, moving_points: np.ndarray | None,
                 rule: str) -> None:
        self.transform, self.labels, self.rule = transform, labels, rule
        self.points = fixed_points, moving_points
        self.flat, self.region = sample_region(fixed_labels, labels, config.region_margin_mm,
                                               config.sample_points, config.seed)
        self.fpc = 1.0 - len(self.flat) / self.region if self.region else 0.0
        self.fixed_values = fixed_labels.array.reshape(-1)[self.flat]
        device = transform.device
        self.world = torch.as_tensor(fixed_labels.grid.world_points(self.flat),
                                     dtype=torch.float32, device=device)
        self.sampler = LabelSampler(moving_labels, device)
        self.fold_idx = fold_subset(len(self.flat), config, device)
        self.rows: list[AlphaRow] = []
        self.influences: list[np.ndarray] = []
        self.errors: list[np.ndarray] = []  # per-landmark TRE (mm) of each α

    @torch.no_grad()
    def __call__(self, alphas: list[Alpha]) -> list[float]:
        """Score ``alphas``; their merits (Dice, or −TRE for the rule tre)."""
        merits = []
        for a in alphas:
            at = self.transform.alpha_tensor(a)
            at_alpha = self.transform.frozen(at)
            warped = self.sampler(at_alpha.map_world(self.world, at)).cpu().numpy()
            det = at_alpha.map_jet(self.world[self.fold_idx], at, order=1).jacobian_determinant()
            per_label, influence = _dice_with_influence(self.fixed_values, warped, self.labels)
            self.influences.append(influence)
            det_values = det.cpu().numpy()
            row = AlphaRow(alpha=a, dice=mean_dice(per_label),
                           dice_se=_standard_error(influence, self.fpc),
                           folding_percent=folding_percent(det_values),
                           dice_per_label=per_label,
                           std_log_jacobian=std_log_jacobian(det_values))
            fixed_points, moving_points = self.points
            if fixed_points is not None and moving_points is not None:
                self.errors.append(tre(at_alpha.map_points(fixed_points, a), moving_points))
                row.tre_mm = float(self.errors[-1].mean())
            self.rows.append(row)
            merits.append(-row.tre_mm if self.rule == "tre" and row.tre_mm is not None
                          else float(row.dice) if row.dice is not None else float("nan"))
        return merits


def search_alpha(transform: ConditionedTransform, fixed_labels: Image, moving_labels: Image,
                 config: SelectionConfig | None = None, labels: Sequence[int] | None = None,
                 fixed_points: np.ndarray | None = None, moving_points: np.ndarray | None = None,
                 alphas: Sequence[Alpha] | None = None, rule: str = "dice") -> SelectionResult:
    """Score the α of the search (the grid; several conditions: :func:`explore`) and choose
    one (see the module docstring)."""
    start = time.perf_counter()
    config = config or SelectionConfig()
    labels = _check_inputs(transform, fixed_labels, moving_labels, labels, fixed_points,
                           moving_points, rule)
    scorer = _LabelScorer(transform, fixed_labels, moving_labels, config, labels,
                          fixed_points, moving_points, rule)
    explore(scorer, transform.num_conditions, config, alphas)
    rows = scorer.rows
    if rule == "tre":
        index, tied = choose_by_tre(rows, scorer.errors)
    else:
        index, tied = _choose_by_dice(rows, config.tie_tolerance, scorer.influences,
                                      scorer.fpc)
    return SelectionResult(rows, rows[index].alpha, index, rule, labels, len(scorer.flat),
                           scorer.region, len(scorer.flat) == scorer.region,
                           time.perf_counter() - start, tied=tied)


def tied_with_best(scores: Sequence[float | None], influences: Sequence[np.ndarray], fpc: float,
                   lower_is_better: bool, tolerance: float = 0.0
                   ) -> tuple[int, list[int], list[float]]:
    """(best index, the indices tied with it, each one's gap standard error). A score is
    tied when it is within ``tolerance`` of the best (0: within the standard error of its
    gap, from the per-point ``influences`` on the same points, finite-population factor
    ``fpc``)."""
    values = np.array([np.nan if v is None else v for v in scores], dtype=float)
    sign = 1.0 if lower_is_better else -1.0
    best = int(np.nanargmin(sign * values))
    gap_ses = [_standard_error(influence - influences[best], fpc) for influence in influences]
    ties = [i for i, se in enumerate(gap_ses) if np.isfinite(values[i])
            and sign * (values[i] - values[best]) <= (tolerance if tolerance > 0 else se)]
    return best, ties, gap_ses


def _choose_by_dice(rows: list[AlphaRow], tie_tolerance: float, influences: list[np.ndarray],
                    fpc: float) -> tuple[int, list[int]]:
    """The largest α among those whose Dice is within the tolerance (or the standard error
    of the gap) of the best, and that tied set; sets each row's ``dice_gap_se``."""
    _, ties, gap_ses = tied_with_best([r.dice for r in rows], influences, fpc, False,
                                      tie_tolerance)
    for row, se in zip(rows, gap_ses, strict=True):
        row.dice_gap_se = se
    return max(ties, key=lambda i: smoothness(rows[i].alpha)), ties


def choose_by_tre(rows: list[AlphaRow], errors: list[np.ndarray]) -> tuple[int, list[int]]:
    """The α of lowest mean TRE, and the α tied with it: those whose mean excess over it
    (paired over the landmarks) is within its standard error."""
    best, ties, _ = tied_with_best([float(e.mean()) for e in errors], errors, 1.0, True)
    return best, ties
