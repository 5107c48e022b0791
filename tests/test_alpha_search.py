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
