"""Evaluation metrics as pure numpy functions.

Dice: per label, background (0) excluded, then the mean over the labels asked for.
TRE: Euclidean distance in mm between mapped fixed points φ(p_fixed) and moving points,
continuous, or *snapped* (both rounded to the nearest voxel of a grid first, as IDIR
reports on DIR-LAB; about 0.1 mm lower — never compare one with the other).
Folding: % of points with det ∇φ ≤ 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from cidir.geometry import Grid
from cidir.geometry.frames import World


def foreground_labels(*label_arrays: np.ndarray) -> list[int]:
    """Sorted labels > 0 present in every given array."""
    common = None
    for arr in label_arrays:
        present = set(np.unique(arr).tolist()) - {0}
        common = present if common is None else common & present
    return sorted(int(v) for v in (common or set()))


def dice_per_label(reference: np.ndarray, candidate: np.ndarray,
                   labels: Sequence[int] | None = None) -> dict[int, float]:
    """Dice 2|A∩B|/(|A|+|B|) for each label (default: labels of ``reference`` > 0).

    A label absent from both gives NaN (undefined), absent from one gives 0.
    """
    reference = np.asarray(reference).ravel()
    candidate = np.asarray(candidate).ravel()
    if reference.shape != candidate.shape:
        raise ValueError(f"dice: shapes differ, {reference.shape} vs {candidate.shape}")
    if labels is None:
        labels = foreground_labels(reference)
    size = int(max(reference.max(initial=0), candidate.max(initial=0), max(labels, default=0))) + 1
    ref_count = np.bincount(reference, minlength=size)
    cand_count = np.bincount(candidate, minlength=size)
    both = np.bincount(reference[reference == candidate], minlength=size)
    out = {}
    for label in labels:
        denom = ref_count[label] + cand_count[label]
        out[int(label)] = float(2.0 * both[label] / denom) if denom else float("nan")
    return out


def mean_dice(per_label: dict[int, float]) -> float:
    """Mean over labels, ignoring undefined (NaN) ones."""
    values = [v for v in per_label.values() if np.isfinite(v)]
    return float(np.mean(values)) if values else float("nan")


def tre(mapped_fixed: World[np.ndarray], moving: World[np.ndarray]) -> np.ndarray:
    """Per-point target registration error (mm): ‖φ(p_fixed) − p_moving‖."""
    mapped_fixed = np.asarray(mapped_fixed, float)
    moving = np.asarray(moving, float)
    if mapped_fixed.shape != moving.shape:
        raise ValueError(f"tre: point arrays differ, {mapped_fixed.shape} vs {moving.shape}")
    return np.linalg.norm(mapped_fixed - moving, axis=-1)


def snap_to_grid(points_world: World[np.ndarray], grid: Grid) -> World[np.ndarray]:
    """World points moved to the centre of their nearest voxel of ``grid`` (mm)."""
    return grid.voxel_to_world(np.floor(grid.world_to_voxel(np.asarray(points_world)) + 0.5))


@dataclass(frozen=True)
class TREStats:
    """TRE statistics over the landmark pairs (mm)."""

    mean: float
    sd: float
    median: float
    max: float
    per_axis_mean_abs: list[float]  # mean |error| along each world axis (LPS)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TRESummary:
    """TRE continuous and, when a grid was given, snapped to its voxel centres (mm)."""

    points: int
    continuous: TREStats
    snapped: TREStats | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"points": self.points, "continuous": self.continuous.to_dict()}
        if self.snapped is not None:
            out["snapped"] = self.snapped.to_dict()
        return out


def _tre_stats(mapped_fixed: np.ndarray, moving: np.ndarray) -> TREStats:
    e = tre(mapped_fixed, moving)
    return TREStats(float(e.mean()), float(e.std()), float(np.median(e)), float(e.max()),
                    [float(v) for v in np.abs(mapped_fixed - moving).mean(axis=0)])


def tre_summary(mapped_fixed: World[np.ndarray], moving: World[np.ndarray],
                snap_grid: Grid | None = None) -> TRESummary:
    """mean, sd, median, max and per-axis mean |error| of the TRE (mm); continuous, and
    snapped to ``snap_grid`` (the moving grid) when given."""
    mapped_fixed = np.asarray(mapped_fixed, float)
    moving = np.asarray(moving, float)
    snapped = None
    if snap_grid is not None:
        snapped = _tre_stats(snap_to_grid(mapped_fixed, snap_grid),
                             snap_to_grid(moving, snap_grid))
    return TRESummary(int(len(moving)), _tre_stats(mapped_fixed, moving), snapped)


def distance_summary(distances_mm: np.ndarray) -> dict[str, float]:
    """Mean, 95th percentile and maximum of distances (mm), as ``mean_mm``, ``p95_mm``,
    ``max_mm``."""
    d = np.asarray(distances_mm, dtype=float)
    return {"mean_mm": float(d.mean()), "p95_mm": float(np.percentile(d, 95)),
            "max_mm": float(d.max())}


def folding_percent(jacobian_det: np.ndarray, mask: np.ndarray | None = None) -> float:
    """% of points (inside ``mask`` if given) with det ∇φ ≤ 0."""
    det = np.asarray(jacobian_det)
    if mask is not None:
        det = det[np.asarray(mask).astype(bool)]
    return float(100.0 * np.mean(det <= 0)) if det.size else float("nan")


def std_log_jacobian(jacobian_det: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Standard deviation of log det ∇φ over points with det > 0 (inside ``mask``)."""
    det = np.asarray(jacobian_det, float)
    if mask is not None:
        det = det[np.asarray(mask).astype(bool)]
    det = det[det > 0]
    return float(np.std(np.log(det))) if det.size else float("nan")
