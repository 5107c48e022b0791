"""The α search's report: a warning when Dice is best at the least-regularized end."""

from cidir.selection.alpha_search import AlphaRow, SelectionResult


def _result(dices: list[float], index: int, alphas=None) -> SelectionResult:
    alphas = alphas or [i / (len(dices) - 1) for i in range(len(dices))]
    rows = [AlphaRow(alpha=a, dice=d, dice_se=0.001, folding_percent=0.0)
            for a, d in zip(alphas, dices, strict=True)]
    return SelectionResult(rows, rows[index].alpha, index, "dice", [1], 100, 100, True, 0.1)


def test_warning_when_best_at_smallest_weight():
    result = _result([0.60, 0.55, 0.50], index=0)
    assert "lambda_min" in result.warning and "0.6000 vs 0.5500" in result.warning
    assert result.to_dict()["warning"] == result.warning


def test_no_warning_inside_the_prior_or_off_its_edge():
    assert _result([0.50, 0.60, 0.55], index=1).warning is None
    assert _result([0.50, 0.55, 0.60], index=2).warning is None  # the smooth end: fine
    # α = 0 not searched: the smallest searched α is not the prior's edge
    assert _result([0.60, 0.50], index=0, alphas=[0.2, 0.6]).warning is None
    assert _result([0.60], index=0, alphas=[0.0]).warning is None
    assert _result([0.50, 0.55, 0.60], index=2).to_dict()["warning"] is None


# ----------------------------------------------------------------- the tie rule and its error
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from cidir.selection.alpha_search import (  # noqa: E402
    _choose_by_dice,
    _dice_with_influence,
    _standard_error,
)


def _rows(alphas, dices):
    return [AlphaRow(alpha=a, dice=d, dice_se=0.0, folding_percent=0.0)
            for a, d in zip(alphas, dices, strict=True)]


def _influences(n: int = 400, gap_sd: float = 0.05, seed: int = 0):
    """Influences of three α on the same n voxels: the middle one differs from the best by
    noise of sd ``gap_sd`` per voxel (gap SE ≈ gap_sd / sqrt(n) = 0.0025), the last by ten
    times as much."""
    rng = np.random.default_rng(seed)
    best = rng.normal(size=n)
    return [best, best + gap_sd * rng.normal(size=n), best + 10 * gap_sd * rng.normal(size=n)]


def test_ties_within_the_gap_standard_error_go_to_the_larger_alpha():
    """α whose Dice is within the gap standard error of the best is a tie, and ties go to the
    largest (smoothest) α; a gap beyond it is no tie. The gap SEs are stored on the rows."""
    influences = _influences()
    gap_se = _standard_error(influences[1] - influences[0], 1.0)
    assert 0.002 < gap_se < 0.003
    rows = _rows([0.0, 0.5, 1.0], [0.800, 0.800 - 0.5 * gap_se, 0.700])
    assert _choose_by_dice(rows, 0.0, influences, 1.0)[0] == 1
    assert rows[0].dice_gap_se == 0.0 and rows[1].dice_gap_se == pytest.approx(gap_se)
    rows = _rows([0.0, 0.5, 1.0], [0.800, 0.800 - 2.0 * gap_se, 0.700])
    assert _choose_by_dice(rows, 0.0, influences, 1.0)[0] == 0  # beyond the error: no tie


def test_tie_tolerance_overrides_the_standard_error():
    """tie_tolerance > 0 replaces the gap SE: a tiny tolerance keeps the strict best, a large
    one makes every α a tie (→ the largest α)."""
    influences = _influences()
    gap_se = _standard_error(influences[1] - influences[0], 1.0)
    dices = [0.800, 0.800 - 0.5 * gap_se, 0.700]
    assert _choose_by_dice(_rows([0.0, 0.5, 1.0], dices), 1e-6, influences, 1.0)[0] == 0
    assert _choose_by_dice(_rows([0.0, 0.5, 1.0], dices), 0.2, influences, 1.0)[0] == 2
    # the best α is larger than its ties: it stays chosen
    assert _choose_by_dice(_rows([0.0, 0.5, 1.0], dices[::-1]), 1e-6, influences[::-1],
                           1.0)[0] == 2


def test_no_tie_when_every_voxel_is_used():
    """An exact Dice (every voxel of the region, fpc = 0) has no error: only equal Dice ties."""
    influences = _influences()
    rows = _rows([0.0, 0.5, 1.0], [0.8, 0.8 - 1e-12, 0.8])
    assert _choose_by_dice(rows, 0.0, influences, 0.0)[0] == 2  # equal Dice: the larger α
    rows = _rows([0.0, 0.5], [0.8, 0.8 - 1e-9])
    assert _choose_by_dice(rows, 0.0, influences[:2], 0.0)[0] == 0


def test_influence_and_standard_error_by_hand():
    """fixed [1, 1, 0, 0], warped [1, 0, 1, 0]: a = 2·1[F∧W] = [2, 0, 0, 0],
    b = 1[F] + 1[W] = [2, 1, 1, 0], D = mean(a) / mean(b) = 0.5, influence (a − D·b) / mean(b)
    = [1, −0.5, −0.5, 0]; SE = sqrt(fpc · var(influence, ddof=1) / n) = sqrt(fpc · 0.5 / 4)."""
    dice, influence = _dice_with_influence(np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0]), [1])
    assert dice == {1: 0.5}
    np.testing.assert_allclose(influence, [1.0, -0.5, -0.5, 0.0])
    assert _standard_error(influence, 1.0) == pytest.approx(np.sqrt(0.125))
    assert _standard_error(influence, 0.5) == pytest.approx(np.sqrt(0.0625))
    assert _standard_error(influence[:1], 1.0) == 0.0


def test_standard_errors_match_simulation():
    """Sampling n of N voxels without replacement many times: the standard deviation of the
    sampled mean Dice, and of the difference of two α's Dice on the same voxels, match the
    delta-method standard errors (finite-population corrected) within 15%."""
    rng = np.random.default_rng(1)
    big, n, labels = 20000, 800, [1, 2]
    fixed = rng.choice([0, 1, 2], size=big, p=[0.4, 0.35, 0.25])

    def warp(labels: np.ndarray, flip: float) -> np.ndarray:
        out = labels.copy()
        change = rng.random(big) < flip
        out[change] = rng.choice([0, 1, 2], size=int(change.sum()))
        return out

    warped_a = warp(fixed, 0.2)
    warped_b = warp(warped_a, 0.05)  # a neighbouring α: mostly the same warped labels
    fpc = 1.0 - n / big
    dice_a, dice_b, se, gap_se = [], [], [], []
    for _ in range(1500):
        idx = rng.choice(big, n, replace=False)
        per_a, inf_a = _dice_with_influence(fixed[idx], warped_a[idx], labels)
        per_b, inf_b = _dice_with_influence(fixed[idx], warped_b[idx], labels)
        dice_a.append(np.mean(list(per_a.values())))
        dice_b.append(np.mean(list(per_b.values())))
        se.append(_standard_error(inf_a, fpc))
        gap_se.append(_standard_error(inf_b - inf_a, fpc))
    dice_a, dice_b = np.array(dice_a), np.array(dice_b)
    assert np.mean(se) == pytest.approx(dice_a.std(ddof=1), rel=0.15)
    assert np.mean(gap_se) == pytest.approx((dice_b - dice_a).std(ddof=1), rel=0.15)
    assert np.mean(gap_se) < 0.8 * np.mean(se)  # the same voxels serve both α: smaller


# ------------------------------------------------------------------- the labels' region
def test_region_on_a_coarse_grid_is_within_a_coarse_voxel(monkeypatch):
    """A box above COARSE_ABOVE voxels gets its margin on a grid twice as coarse: the region
    keeps every label voxel and is the exact one to within a coarse voxel's diagonal."""
    from scipy import ndimage

    from cidir.geometry import Grid, Image
    from cidir.selection import alpha_search

    grid = Grid.from_shape((30, 40, 50), (1.5, 1.0, 1.0))
    zyx = np.stack(np.meshgrid(*[np.arange(n) for n in (30, 40, 50)], indexing="ij"), -1)
    labels = np.zeros((30, 40, 50), np.int16)
    labels[np.linalg.norm((zyx - [15, 20, 25]) / [6, 9, 12], axis=-1) <= 1] = 3
    labels[2:4, 5:9, 40:44] = 7  # a small label near the edge
    image = Image(labels, grid, "labels")
    exact = alpha_search.labels_region(image, [3, 7], 6.0)
    monkeypatch.setattr(alpha_search, "COARSE_ABOVE", 0)
    coarse = alpha_search.labels_region(image, [3, 7], 6.0)
    distance = ndimage.distance_transform_edt(labels == 0, sampling=grid.spacing_zyx)
    assert np.array_equal(exact, distance <= 6.0)
    diagonal = float(np.linalg.norm(2 * np.asarray(grid.spacing_zyx)))
    assert coarse[labels > 0].all()
    assert coarse[distance <= 6.0 - diagonal].all() and not coarse[distance > 6.0 + diagonal].any()
    assert 0.9 < coarse.sum() / exact.sum() < 1.1
