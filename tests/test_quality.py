"""Registration quality at the default configuration, one small pair per task (slow: each
is a full fit, α search and dense field; ``make test-slow``).

The bounds sit below the values measured by ``benchmarks/ablation.py`` (the ``default`` row
of docs/method-choices.md) with room for the CPU model's rounding differences; a drop below
them means the defaults lost accuracy."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.evaluate import before_registration, evaluate_field  # noqa: E402
from benchmarks.methods.inr import run_cidir  # noqa: E402
from benchmarks.tasks import TaskSpec, brain_pairs, lung_mri_pairs, phantom_pairs  # noqa: E402

pytestmark = pytest.mark.slow


def _register(pair) -> dict:
    result = run_cidir(pair, {"cidir": {}})
    return evaluate_field(pair, result.field)


def test_phantom_small_default():
    """The small breathing phantom (the demo's pair): TRE ≤ 30% of before, no folding."""
    (pair,) = phantom_pairs(TaskSpec(phantom_size="small", phantom_seeds=(0,)))
    before = before_registration(pair)["tre_mm"]
    metrics = _register(pair)
    assert metrics["tre_mm"] <= 0.3 * before, (metrics["tre_mm"], before)
    assert metrics["folding_percent"] < 0.5


def test_brain2d_first_pair_default(shared_data):
    """The first brain MRI 2D pair of the benchmark (2 ← 11): odd-label Dice."""
    (pair,) = brain_pairs(TaskSpec(brain_pairs=1), shared_data)
    metrics = _register(pair)
    assert metrics["dice_eval"] >= 0.57, metrics["dice_eval"]  # measured 0.611
    assert metrics["folding_percent"] < 0.5


def test_lung_mri_first_pair_default(shared_data):
    """The first lung MRI pair of the benchmark (0004 ← 0006): lobe Dice."""
    (pair,) = lung_mri_pairs(TaskSpec(lung_pairs=1), shared_data)
    metrics = _register(pair)
    assert metrics["dice_eval"] >= LUNG_BOUND, metrics["dice_eval"]
    assert metrics["folding_percent"] < 0.5


LUNG_BOUND = 0.86  # measured 0.883 (docs/method-choices.md, ablation "default")
