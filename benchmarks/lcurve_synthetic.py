"""The L-curve figures of docs/method-choices.md: the tests' synthetic 2D pair at 0, 3 and 10 %
image noise, the L-curve corner against the best α of the grid (mean field error in the fixed
mask, mm), at the default training configuration of the tests.

    python benchmarks/lcurve_synthetic.py
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import test_select_rules as rules  # noqa: E402
from cidir.config import RunConfig  # noqa: E402
from cidir.data.synthetic import make_synthetic_pair  # noqa: E402
from cidir.selection.lcurve import search_lcurve  # noqa: E402
from cidir.training import fit  # noqa: E402
from test_registration import TEST_CONFIG, _endpoint_error  # noqa: E402


def measure(noise: float) -> str:
    """One line: the corner's α and field error against the best α of the grid."""
    rules.NOISE = noise  # read by rules._noisy
    pair = make_synthetic_pair(2, seed=0)
    rng = np.random.default_rng(1)
    if noise:
        pair = dataclasses.replace(pair, fixed=rules._noisy(pair.fixed, rng),
                                   moving=rules._noisy(pair.moving, rng))
    config = RunConfig().with_overrides(
        {k: v for k, v in TEST_CONFIG.items() if not k.startswith("objective")})
    result = fit(pair.fixed, pair.moving, config, pair.fixed_mask)
    choice = search_lcurve(result.transform, pair.fixed, pair.moving, config.objective,
                           config.selection, mask=pair.fixed_mask, margin_mm=0.0)
    errors = [_endpoint_error(pair, result.transform, row.alpha) for row in choice.rows]
    best = int(np.argmin(errors))
    return (f"noise {noise:.2f}: corner α {choice.alpha} error {errors[choice.index]:.3f} mm; "
            f"best α {choice.rows[best].alpha} error {errors[best]:.3f} mm; "
            f"ratio {errors[choice.index] / errors[best]:.2f}; note {choice.note}")


if __name__ == "__main__":
    for level in (0.0, 0.03, 0.10):
        print(measure(level), flush=True)
