"""Evaluation metrics on hand-made inputs with known values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cidir.evaluation.metrics import (
    dice_per_label,
    folding_percent,
    foreground_labels,
    mean_dice,
    snap_to_grid,
    std_log_jacobian,
    tre,
    tre_summary,
)
from cidir.geometry import Grid

REFERENCE = np.array([[0, 1, 1, 2], [2, 2, 0, 3]])
CANDIDATE = np.array([[0, 1, 2, 2], [2, 0, 0, 0]])


def test_dice_known_values():
    """Label 1: 2·1/(2+1); label 2: 2·2/(3+3); label 3 absent from the candidate: 0;
    background excluded by default."""
    dice = dice_per_label(REFERENCE, CANDIDATE)
    assert list(dice) == [1, 2, 3]
    assert dice[1] == pytest.approx(2 / 3)
    assert dice[2] == pytest.approx(2 / 3)
    assert dice[3] == 0.0
    assert dice_per_label(REFERENCE, REFERENCE) == {1: 1.0, 2: 1.0, 3: 1.0}


def test_dice_absent_labels():
    """Asked labels absent from both give NaN; present only in the candidate give 0."""
    dice = dice_per_label(REFERENCE, np.where(CANDIDATE == 1, 7, CANDIDATE), labels=[1, 4, 7])
    assert dice[1] == 0.0
    assert math.isnan(dice[4])
    assert dice[7] == 0.0
    with pytest.raises(ValueError):
        dice_per_label(REFERENCE, CANDIDATE[:, :3])


def test_mean_dice_ignores_nan():
    """mean_dice skips NaN labels; all-NaN gives NaN."""
    assert mean_dice({1: 0.5, 2: float("nan"), 3: 1.0}) == pytest.approx(0.75)
    assert math.isnan(mean_dice({4: float("nan")}))
    assert math.isnan(mean_dice({}))


def test_foreground_labels():
    """Labels > 0 common to every array, sorted."""
    assert foreground_labels(REFERENCE) == [1, 2, 3]
    assert foreground_labels(REFERENCE, CANDIDATE) == [1, 2]


def test_tre_values():
    """Euclidean distances in mm, per point; shape mismatch raises."""
    mapped = np.array([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    moving = np.array([[3.0, 4.0, 0.0], [1.0, 2.0, 3.0]])
    np.testing.assert_allclose(tre(mapped, moving), [5.0, 0.0])
    with pytest.raises(ValueError):
        tre(mapped, moving[:1])


def _grid() -> Grid:
    a = 0.3
    rot = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])
    return Grid((10, 10, 10), (0.5, 1.0, 2.5), (3.0, -4.0, 7.0), tuple(rot.ravel()))


def test_snap_to_grid_rounds_to_voxel_centres():
    """Snapping rounds continuous voxel indices to the nearest voxel centre (halves up), in
    the grid's own (rotated, anisotropic) frame, and returns world mm."""
    grid = _grid()
    voxels = np.array([[1.4, 2.6, 0.2], [3.5, 4.49, 5.51], [0.0, 0.0, 0.0]])
    snapped = snap_to_grid(grid.voxel_to_world(voxels), grid)
    expected = grid.voxel_to_world(np.array([[1.0, 3.0, 0.0], [4.0, 4.0, 6.0], [0.0, 0.0, 0.0]]))
    np.testing.assert_allclose(snapped, expected, atol=1e-9)


def test_tre_summary():
    """Keys and values of the summary, continuous and snapped."""
    grid = _grid()
    moving = grid.voxel_to_world(np.array([[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]))
    offset = np.array([[0.1, 0.0, 0.0], [0.0, 0.0, 0.3]])
    mapped = moving + offset
    summary = tre_summary(mapped, moving).to_dict()
    assert set(summary) == {"points", "continuous"}
    assert summary["points"] == 2
    stats = summary["continuous"]
    assert set(stats) == {"mean", "sd", "median", "max", "per_axis_mean_abs"}
    assert stats["mean"] == pytest.approx(0.2)
    assert stats["sd"] == pytest.approx(0.1)
    assert stats["max"] == pytest.approx(0.3)
    assert stats["median"] == pytest.approx(0.2)
    np.testing.assert_allclose(stats["per_axis_mean_abs"], [0.05, 0.0, 0.15])
    typed = tre_summary(mapped, moving, snap_grid=grid)
    snapped = typed.to_dict()
    assert set(snapped) == {"points", "continuous", "snapped"}
    assert snapped["continuous"] == stats
    assert typed.snapped is not None and typed.snapped.mean == 0.0  # errors below half a voxel
    assert snapped["snapped"]["max"] == 0.0


def test_folding_percent():
    """% of det ≤ 0 (0 counts as folded), with and without a mask; empty mask gives NaN."""
    det = np.array([[1.0, -0.5], [0.0, 2.0]])
    assert folding_percent(det) == 50.0
    mask = np.array([[1, 1], [0, 0]])
    assert folding_percent(det, mask) == 50.0
    assert folding_percent(det, np.array([[True, False], [False, True]])) == 0.0
    assert math.isnan(folding_percent(det, np.zeros((2, 2), bool)))


def test_std_log_jacobian():
    """std of log det over det > 0 (inside the mask)."""
    det = np.array([1.0, math.e, 1.0 / math.e, -1.0])
    assert std_log_jacobian(det) == pytest.approx(math.sqrt(2.0 / 3.0))
    assert std_log_jacobian(det, np.array([1, 1, 0, 1])) == pytest.approx(0.5)
    assert std_log_jacobian(np.ones(5)) == 0.0
    assert math.isnan(std_log_jacobian(np.array([-1.0, 0.0])))
