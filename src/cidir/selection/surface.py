"""Choosing α by boundary agreement in millimetres: the ``surface`` rule.

Dice counts voxels, so for a large organ it barely moves while its boundary moves by a
millimetre: the α it prefers is decided by a handful of boundary voxels. This rule scores
the boundaries themselves, continuously:

- for each label l, d_F,l and d_M,l are the signed distances (mm; negative inside) to the
  label's boundary in the fixed and the moving label map (Euclidean distance transforms with
  the voxel spacing, on the label's bounding box grown by the clamp below);
- points x are the fixed voxels on each label's boundary (|d_F,l(x)| within one voxel: the
  layers of voxels on both sides of it), drawn once — the same for every α (common random
  numbers) — an equal share of ``selection.sample_points`` per label;
- the error at x is |d_M,l(φ(x)) − d_F,l(x)| (mm): how far the mapped boundary point lands
  from the moving label's boundary (d_M read by linear interpolation, so it moves with
  sub-voxel shifts; the d_F term removes the half-voxel offset of the voxel centres), clamped
  at twice ``selection.region_margin_mm`` (also where φ(x) leaves the moving label's box);
- the score of α is the mean over labels of each label's mean error, in mm (lower is
  better): a one-sided mean surface distance, fixed boundary → moving boundary.

Only points on the boundary count: away from it, the distance to a deformed organ changes
with the deformation itself, and would reward a rigid φ. Ties: α whose score exceeds the
best by no more than the standard error of that excess (paired over the points, per-label
means averaged; finite-population corrected) count as ties, and ties go to the smoother
(larger) α, as with Dice. Folding % and std log det ∇φ are measured on the first
``selection.folding_points`` points.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage

from cidir.config import SelectionConfig
from cidir.evaluation.metrics import folding_percent, std_log_jacobian, tre
from cidir.fields import ConditionedTransform, ImageSampler
from cidir.geometry import Image
from cidir.selection.alpha_search import (
    AlphaRow,
    SelectionResult,
    checked_labels,
    fold_subset,
    tied_with_best,
)
from cidir.selection.alpha_space import Alpha, explore, smoothness


def signed_distance(labels: Image, label: int, clamp: float) -> tuple[np.ndarray, Image]:
    """Signed distance (mm, negative inside) to ``label`` on its bounding box grown by
    ``clamp`` (mm) plus one voxel, clamped to ±clamp: the full-grid array (+clamp outside
    the box) and the box as an Image (for interpolation). Distances between voxel centres,
    less half the smallest spacing: the boundary runs between the last voxel in and the
    first out."""
    inside = labels.array == label
    full = np.full(inside.shape, clamp, dtype=np.float32)
    where = np.nonzero(inside)
    if not where[0].size:
        return full, Image(full, labels.grid, f"distance to label {label}")
    spacing = np.asarray(labels.grid.spacing_zyx, float)
    grow = np.ceil(clamp / spacing).astype(int) + 1
    box = tuple(slice(max(int(w.min()) - g, 0), min(int(w.max()) + g + 1, n))
                for w, g, n in zip(where, grow, inside.shape, strict=True))
    crop = inside[box]
    half = 0.5 * float(spacing.min())  # the boundary lies between voxel centres
    distance = np.where(crop, half - ndimage.distance_transform_edt(crop, sampling=spacing),
                        ndimage.distance_transform_edt(~crop, sampling=spacing) - half)
    full[box] = np.clip(distance, -clamp, clamp)
    start = tuple(int(s.start) for s in reversed(box))
    size = tuple(int(s.stop - s.start) for s in reversed(box))
    grid = labels.grid.region(start, size)
    return full, Image(np.ascontiguousarray(full[box]), grid, f"distance to label {label}")


def _band_points(fixed_labels: Image, labels: Sequence[int], band_mm: float, n: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Flat fixed voxels within ``band_mm`` of each label's boundary (an equal share of
    ``n`` per label), their label index (into ``labels``), their fixed signed distance, and
    the number of such voxels."""
    rng = np.random.default_rng(seed)
    share = max(n // len(labels), 1)
    flats, owners, distances, total = [], [], [], 0
    for k, label in enumerate(labels):
        full, _ = signed_distance(fixed_labels, label, 2.0 * band_mm)
        band = np.flatnonzero(np.abs(full.reshape(-1)) <= band_mm)
        total += len(band)
        if len(band) > share:
            band = np.sort(rng.choice(band, share, replace=False))
        flats.append(band)
        owners.append(np.full(len(band), k))
        distances.append(full.reshape(-1)[band])
    return np.concatenate(flats), np.concatenate(owners), np.concatenate(distances), total


class _MovingDistances:
    """d_M,l(y) for world points y (mm) of label index k, clamped (module docstring)."""

    def __init__(self, moving_labels: Image, labels: Sequence[int], clamp: float,
                 device: torch.device) -> None:
        self.clamp = clamp
        self.samplers = [ImageSampler(signed_distance(moving_labels, v, clamp)[1], device)
                         for v in labels]

    def __call__(self, world: torch.Tensor, owner: torch.Tensor) -> torch.Tensor:
        out = torch.full((len(world),), self.clamp, device=world.device)
        for k, sampler in enumerate(self.samplers):
            pick = owner == k
            y = world[pick]
            inside = sampler.inside(sampler.to_voxel(y))
            out[pick] = torch.where(inside, sampler(y), torch.full_like(y[:, 0], self.clamp))
        return out


def _per_label_means(error: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    return np.array([error[owner == k].mean() if (owner == k).any() else np.nan
                     for k in range(count)])


def _influence(error: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    """Each point's contribution to the mean over labels of the per-label mean error."""
    sizes = np.bincount(owner, minlength=count).astype(float)
    defined = int((sizes > 0).sum())
    return error * len(error) / (sizes[owner] * max(defined, 1))


class _SurfaceScorer:
    """Scores α points by the boundary error (module docstring), keeping every row and its
    per-point influence on the score."""

    def __init__(self, transform: ConditionedTransform, fixed_labels: Image,
                 moving_labels: Image, config: SelectionConfig, labels: list[int],
                 points: tuple[np.ndarray | None, np.ndarray | None]) -> None:
        band = float(max(fixed_labels.grid.spacing))  # one voxel: the boundary's layers
        self.clamp = 2.0 * max(config.region_margin_mm, band)
        self.flat, self.owner, self.d_fixed, self.total = _band_points(
            fixed_labels, labels, band, config.sample_points, config.seed)
        device = transform.device
        self.transform, self.count, self.points = transform, len(labels), points
        self.world = torch.as_tensor(fixed_labels.grid.world_points(self.flat),
                                     dtype=torch.float32, device=device)
        self.owner_t = torch.as_tensor(self.owner, device=device)
        self.moving = _MovingDistances(moving_labels, labels, self.clamp, device)
        self.fold_idx = fold_subset(len(self.flat), config, device)
        self.rows: list[AlphaRow] = []
        self.influences: list[np.ndarray] = []

    @torch.no_grad()
    def __call__(self, alphas: list[Alpha]) -> list[float]:
        """Score ``alphas``; their merits (−score, mm)."""
        merits = []
        for a in alphas:
            at = self.transform.alpha_tensor(a)
            fixed_at = self.transform.frozen(at)
            d_moving = self.moving(fixed_at.map_world(self.world, at), self.owner_t)
            error = np.minimum(np.abs(d_moving.cpu().numpy() - self.d_fixed), self.clamp)
            self.influences.append(_influence(error, self.owner, self.count))
            det = fixed_at.map_jet(self.world[self.fold_idx], at, order=1).jacobian_determinant()
            det_values = det.cpu().numpy()
            score = float(np.nanmean(_per_label_means(error, self.owner, self.count)))
            row = AlphaRow(alpha=a, dice=None, dice_se=None,
                           folding_percent=folding_percent(det_values),
                           std_log_jacobian=std_log_jacobian(det_values), surface_mm=score)
            fixed_points, moving_points = self.points
            if fixed_points is not None and moving_points is not None:
                row.tre_mm = float(tre(fixed_at.map_points(fixed_points, a),
                                       moving_points).mean())
            self.rows.append(row)
            merits.append(-score)
        return merits


def search_surface(transform: ConditionedTransform, fixed_labels: Image, moving_labels: Image,
                   config: SelectionConfig | None = None, labels: Sequence[int] | None = None,
                   fixed_points: np.ndarray | None = None,
                   moving_points: np.ndarray | None = None,
                   alphas: Sequence[Alpha] | None = None) -> SelectionResult:
    """Score the α of the search by the boundary error and choose (module docstring)."""
    start = time.perf_counter()
    config = config or SelectionConfig()
    chosen = checked_labels(transform, fixed_labels, moving_labels, labels)
    scorer = _SurfaceScorer(transform, fixed_labels, moving_labels, config, chosen,
                            (fixed_points, moving_points))
    explore(scorer, transform.num_conditions, config, alphas)
    rows, flat, total = scorer.rows, scorer.flat, scorer.total
    fpc = 1.0 - len(flat) / total if total else 0.0
    _, tied, _ = tied_with_best([r.surface_mm for r in rows], scorer.influences, fpc, True)
    index = max(tied, key=lambda i: smoothness(rows[i].alpha))  # ties: the smoother α
    return SelectionResult(rows, rows[index].alpha, index, "surface", chosen, len(flat), total,
                           len(flat) == total, time.perf_counter() - start, tied=tied)
