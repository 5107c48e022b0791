"""Is the α-uncertainty map meaningful? Its calibration against the known field of the
phantom: the "Uncertainty" table of docs/selection.md (issue 11 item 3).

    python benchmarks/selection_uncertainty.py [--tasks phantom phantom-sliding] [--pairs 2]

For each phantom pair (trained once, :mod:`benchmarks.selection_fits`) and each label rule
(dice, surface) the selection's tied α give the map u(x) = max ‖φ(x; α_i) − φ(x; α_j)‖ (the
library's :func:`cidir.fields.uncertainty.alpha_spread`, the core of the exported map, at
the 200,000 seeded lung-mask voxels of :mod:`benchmarks.selection_judge`), and the true
error at the chosen α is e(x) = ‖φ(x; α*) − x − d_true(x)‖. Reported:
the Pearson and Spearman correlations of u and e over the voxels, the share of voxels whose
true error exceeds the uncertainty (e > u), mean u and mean e, and mean e within the voxels
of the highest and lowest fifth of u. A third row, ``every α``, spans the whole grid: how far
the prior moves φ at all. Results: benchmarks/results/selection_uncertainty.json
and the block between the ``selection-uncertainty`` markers of docs/selection.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.selection_fits import (  # noqa: E402
    FittedPair,
    each_fitted,
    save_study,
    study_parser,
)
from benchmarks.selection_judge import Judge  # noqa: E402
from cidir.fields.uncertainty import alpha_spread, frozen_at  # noqa: E402
from cidir.selection import search_alpha, search_surface  # noqa: E402


def calibration(fp: FittedPair, rule: str) -> dict:
    """The map over the tied α of ``rule`` (dice or surface; ``every α``: the dice rule's
    choice, the map over the whole grid — how far the prior moves φ at all) against the true
    error at the chosen α."""
    pair = fp.pair
    search = search_surface if rule == "surface" else search_alpha
    result = search(fp.transform, pair.fixed_sel, pair.moving_sel, fp.config.selection,
                    labels=pair.sel_labels)
    spanned = [r.alpha for r in result.rows] if rule == "every α" else result.tied_alphas
    points = Judge(fp).field_points
    assert points is not None  # the phantom has a true field and a lung mask
    world, truth = points
    spread = alpha_spread(frozen_at(fp.transform, spanned),
                          torch.as_tensor(world, dtype=torch.float32)).double().numpy()
    chosen = fp.transform.map_points(world, result.alpha) - world
    error = np.linalg.norm(chosen - truth, axis=1)
    low, high = np.percentile(spread, [20, 80])
    varies = spread.std() > 0
    return {"task": pair.task, "pair": pair.name, "rule": rule, "alpha": result.alpha,
            "tied_alphas": spanned, "points": len(world),
            "pearson": float(stats.pearsonr(spread, error)[0]) if varies else None,
            "spearman": float(stats.spearmanr(spread, error)[0]) if varies else None,
            "share_error_above_uncertainty": float((error > spread).mean()),
            "mean_uncertainty_mm": float(spread.mean()), "mean_error_mm": float(error.mean()),
            "error_top_fifth_mm": float(error[spread >= high].mean()),
            "error_bottom_fifth_mm": float(error[spread <= low].mean())}


def _num(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def table(rows: list[dict]) -> str:
    lines = ["| pair | rule | α spanned | mean u (mm) | mean e (mm) | Pearson r | Spearman ρ | "
             "share e > u | mean e, top fifth of u | mean e, bottom fifth of u |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tied = ", ".join(f"{a:g}" for a in r["tied_alphas"])
        tied = "all 21" if len(r["tied_alphas"]) == 21 and r["rule"] == "every α" else tied
        lines.append(
            f"| {r['task']} {r['pair']} | {r['rule']} | {tied} | "
            f"{r['mean_uncertainty_mm']:.3f} | {r['mean_error_mm']:.3f} | "
            f"{_num(r['pearson'], '.2f')} | {_num(r['spearman'], '.2f')} | "
            f"{r['share_error_above_uncertainty']:.1%} | {r['error_top_fifth_mm']:.3f} | "
            f"{r['error_bottom_fifth_mm']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = study_parser(__doc__ or "", 2, ["phantom", "phantom-sliding"],
                        "selection_uncertainty.json").parse_args(argv)
    rows = []
    for fp in each_fitted(args):
        for rule in ("dice", "surface", "every α"):
            rows.append(calibration(fp, rule))
            print(json.dumps(rows[-1]), flush=True)
    save_study(args, "benchmarks/selection_uncertainty.py", sys.argv[1:], rows,
               {"selection-uncertainty": table(rows)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
